"""HTTP routers, one per feature."""
