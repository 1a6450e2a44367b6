"""Portico: the kernel shared by every surface (settings, errors, registry, auth, storage)."""
