"""Shared fixtures: the session's PostgreSQL server for the results-database tests."""

from db_backends import postgres_url

__all__ = ["postgres_url"]
