"""`framecast node` — the provider agent's commands (contributed by entry point).

Thin commands over `framecast.node` services: `init` writes a commented config (and, for
the devnet, a keystore and tiny weights), `register` bonds, `run` runs the agent,
`status` shows slots, jobs and earnings, `models` pulls and lists weights, `replay`
re-runs a delivered job. Each lives in its own module of `framecast.node.commands`; this
module only groups them (the `framecast.commands` entry point names `node_group`).
"""

from __future__ import annotations

import click

from framecast.node.commands.doctor import doctor
from framecast.node.commands.models import models_group
from framecast.node.commands.replay import replay
from framecast.node.commands.run import run
from framecast.node.commands.setup import init, register
from framecast.node.commands.status import status


@click.group("node")
def node_group() -> None:
    """Provider node agent: init, register, run, status."""


for _command in (init, register, run, status, models_group, replay, doctor):
    node_group.add_command(_command)
