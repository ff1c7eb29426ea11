"""Scenarios and the runner that plays them on the engine's virtual clock."""
