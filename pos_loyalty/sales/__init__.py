"""The sale path: stored quotes, idempotent commits, refunds, the receipt outbox."""
