"""DecisionPolicy logic as plain functions: spec -> desired children, observations -> status."""
