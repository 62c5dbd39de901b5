"""`framecast node` — the provider agent's command group (contributed by entry point)."""

from __future__ import annotations

import click


@click.group("node")
def node_group() -> None:
    """Provider node agent: init, register, run, status."""
