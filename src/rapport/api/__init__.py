"""The HTTP API: an app factory and one router module per domain."""

from rapport.api.app import create_app

__all__ = ["create_app"]
