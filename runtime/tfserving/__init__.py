"""A minimal client of TensorFlow Serving's gRPC API, without TensorFlow: Croupier's own mirror of the few messages it
needs (``model_service.proto``, generated code checked in) called on TF Serving's method paths over ``grpc.aio``."""
