"""ModelDeployment: spec -> static children (``children``), GetModelStatus -> serving plan (``plan``) -> model configs
and route (applied by ``observer``), observations -> typed status (``status``), and its Kopf registration
(``handlers``)."""
