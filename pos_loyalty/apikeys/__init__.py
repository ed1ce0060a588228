"""API keys for tills, head office and administrators."""
