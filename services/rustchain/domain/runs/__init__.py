"""Runs: a mission's run state, the executor's decisions, learned step settings, and the
projections folded from its events (index, audit, trajectory).
"""
