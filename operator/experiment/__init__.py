"""Experiment: registered on the shared machinery; until its reconciler lands, its status says so."""
