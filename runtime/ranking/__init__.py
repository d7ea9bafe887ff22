"""Rankings: ordered slates of arms drawn from a policy's decision vector, one logged decision per position."""
