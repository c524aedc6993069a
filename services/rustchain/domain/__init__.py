"""The pure domain: missions, plans, events and policies. No I/O lives here."""
