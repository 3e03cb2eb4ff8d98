"""The gRPC server: thin layer over geometry and generators (decode, validate, batch, encode)."""
