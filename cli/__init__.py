"""The gendebias command line (thin layer over the library, the service and the SDK)."""
