"""The OS sandbox for programs steps run: one interface (steps.sandboxing), two mechanisms.

Kept empty so that the Landlock launcher, which imports from here, starts fast.
"""
