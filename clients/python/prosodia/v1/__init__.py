"""Generated gRPC stubs for prosodia.v1 (see clients/python/generate.sh); not edited by hand."""
