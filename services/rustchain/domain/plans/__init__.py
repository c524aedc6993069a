"""Plans: what a mission compiles to, its variable bindings, and the verifier's verdict on it."""
