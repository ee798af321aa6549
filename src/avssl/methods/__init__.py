"""The model side of each paper: one module per method (encoders, heads, which losses with which
weights, what is logged), a small shared base, a registry by method name, and config loading."""
