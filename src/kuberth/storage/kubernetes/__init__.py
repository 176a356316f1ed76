"""Access to the Kubernetes API: the only package that talks to the `kubernetes` client."""
