"""batch: see the open issues; nothing here yet."""
