"""Background work: Dramatiq actors, the broker set-up, per-mailbox locks and coalescing, the scheduler."""
