"""Head office: signed rule bundles, published once, pulled by every store."""
