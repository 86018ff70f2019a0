"""Use cases, one module per noun. The only callers of the store and the adapters."""
