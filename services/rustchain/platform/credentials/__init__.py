"""Credentials: signing keys and the tokens services and tenants present."""
