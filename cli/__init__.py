"""The ``gendebias`` command line (thin layer over the library)."""
