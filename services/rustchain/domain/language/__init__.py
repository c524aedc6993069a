"""The mission language: YAML read with positions, the mission model, references and diagnostics."""
