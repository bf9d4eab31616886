"""`rtcheck check` subcommand (placeholder until implemented)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this subcommand to ``cli``."""
    del cli
