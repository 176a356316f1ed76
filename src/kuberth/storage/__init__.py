"""Storage layer: the Kubernetes API and (later) the database. Never imports the HTTP layer."""
