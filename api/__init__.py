"""The HTTP adapter: FastAPI app factory, routers, schemas, auth and the error shape."""
