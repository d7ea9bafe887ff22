"""DecisionPolicy: spec -> desired children (``children``), observations -> typed status (``status``), the runtime
probe (``probe``, ``observer``), and its Kopf registration (``handlers``)."""
