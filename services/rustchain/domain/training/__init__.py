"""Training: suites, the rule judge, and the paired bootstrap evidence the optimiser promotes on."""
