"""The HTTP adapter of the decision core: a lean raw-ASGI app served by uvicorn (uvloop + httptools)."""
