"""Kuberth's database: users, their namespaces and API tokens (SQLAlchemy 2, Alembic)."""
