"""Kuberth: self-service, multi-tenant Kubernetes namespaces for GitHub users."""

__version__ = "0.1.0"
