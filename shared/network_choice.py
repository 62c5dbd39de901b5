"""Which network the command line chose: `--network NAME` or FRAMECAST_NETWORK.

Kept apart from `shared/networks.py` (which needs pydantic models and eth-account) so that
the root `framecast` group can record the choice without importing anything heavy: the
root option leaves it in click's ``ctx.meta``, which every nested command shares, and the
client's and the node's commands read it back with `chosen_network`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

#: The network commands use when none is chosen: this machine's devnet.
DEFAULT_NETWORK = "local"
#: Environment variable that chooses the network for every command, client and node.
NETWORK_ENV = "FRAMECAST_NETWORK"
#: Key under which a `--network` option leaves its value in click's shared ``meta``.
NETWORK_META_KEY = "framecast.network"


def chosen_network(meta: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str | None:
    """The network chosen on the command line (root or command `--network`) or by
    FRAMECAST_NETWORK; None when neither says."""
    value = meta.get(NETWORK_META_KEY)
    if value:
        return str(value)
    env = (os.environ if environ is None else environ).get(NETWORK_ENV)
    return env or None
