"""The devnet refuses a port someone else holds instead of deploying onto a stranger's chain."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from framecast.client.devnet import DevnetPaths, devnet_up
from framecast.shared.errors import ConfigError


def test_busy_port_is_refused_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port}") as info:
            devnet_up(DevnetPaths(tmp_path / "devnet"), port)
    assert "--port" in str(info.value)
    assert not (tmp_path / "devnet" / "deployment.json").exists()
