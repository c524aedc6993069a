"""A tenant's policy and the rules the verifier proves and the runtime re-checks."""
