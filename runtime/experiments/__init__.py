"""Experiment assignment: the typed service (assign, exposures, outcomes, stats), its stores' rules and HTTP routes."""
