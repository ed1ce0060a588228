"""The points ledger: append-only entries, lots with expiry, balances as sums."""
