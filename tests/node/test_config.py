"""The node config as loaded from TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.node.config import load_settings


def test_config_paths_expand_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One place expands "~" for every user of the config (agent, replay, arbiter).
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "node.toml"
    config.write_text('state_dir = "~/state"\n[store]\nstore_path = "~/blocks"\n')
    settings = load_settings(config)
    assert settings.state_dir == tmp_path / "state"
    assert settings.store.store_path == tmp_path / "blocks"
