"""Model-scored decisions: a TF Serving model scores the eligible arms, the policy explores around the scores.

`exploration` (the probability vectors over scores), `tensors` (the Predict request and response, the signature check),
`client` (TF Serving over `grpc.aio`), `scorer` (one Predict per decision, the fallback, its metrics).
"""
