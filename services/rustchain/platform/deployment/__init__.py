"""The deployment: which processes `rustchain up` runs and how they find each other."""
