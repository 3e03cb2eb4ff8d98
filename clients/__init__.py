"""Python SDK: Client and AsyncClient (numpy in, numpy out; never torch)."""
