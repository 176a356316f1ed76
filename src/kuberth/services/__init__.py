"""Domain services: what Kuberth does, independent of HTTP. Calls storage, never the HTTP layer."""
