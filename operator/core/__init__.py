"""The machinery every Kind shares: resources and the API client (``resources``, ``kube``), applying children
(``applier``), observing them through indexes (``observer``), writing status and Events (``status``,
``conditions``), the per-object loop (``supervisor``) and Kopf registration (``registration``). A Kind plugs in with a
``KindController`` (``controller``)."""
