"""The control plane: FastAPI app factory, routers and the server process."""
