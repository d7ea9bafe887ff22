"""A local stand-in for TensorFlow Serving over real SavedModels (development and tests only).

Clusters run the real ``tensorflow/serving`` image; this server speaks the same public API (the stock gRPC
PredictionService and ModelService, the REST API, the Prometheus endpoint and the command-line flags) so that tests
and ``make demo`` exercise what the operator, the router and the canary analysis see in a cluster. See
docs/modelserver.md for what is faithful and what differs.
"""
