"""The model router: TF Serving's own REST and gRPC API in front of TF Serving, splitting requests that name no
version between the labels ``stable`` and ``canary`` by the live weight, and counting per version.

``routing`` is the transport-free core (which label, which version, what to count); ``rest`` (an asyncio protocol
over httptools on the socket ``listen`` opens) and ``grpc_api`` (grpc.aio generic handlers) are thin adapters;
``table_file`` keeps the routing table in step with the file the operator writes."""
