"""The pure core: instruments, messages, order books and the deterministic engine (no I/O)."""
