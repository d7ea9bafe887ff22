"""The transport-free decision core: validation, the decision service, the reward join."""
