"""gRPC: servers, clients, authentication and request decoding."""
