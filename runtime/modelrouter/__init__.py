"""The model router: TF Serving's own REST and gRPC API in front of TF Serving, splitting requests that name no
version between the labels ``stable`` and ``canary`` by the live weight, and counting per version.

``routing`` is the transport-free core (which label, which version, what to count); ``rest`` (HTTP/1.1 over
httptools) and ``grpc_api`` (HTTP/2 frames over h2, framing helpers in ``grpc_frames``) are asyncio protocols on
sockets ``listen`` opens; ``table_file`` keeps the routing table in step with the file the operator writes."""
