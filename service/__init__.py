"""The gRPC server: thin layer over geometry and generators (decode, validate, batch, encode)."""

from gendebias._extras import require_extra

require_extra("gendebias.service", "server")  # before any import that needs the extra
