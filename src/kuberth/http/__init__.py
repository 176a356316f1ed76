"""HTTP layer: FastAPI routes, dependencies and the one place errors become responses."""
