"""Developer tools run by `make`: protobuf generation and its check, the demo."""
