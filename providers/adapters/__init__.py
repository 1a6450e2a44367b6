"""One adapter per vendor wire protocol, chosen by `providers.catalogue` data through `ADAPTERS`."""
