"""Fixtures of the pipeline tests: tiny models built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.runner.tiny import build_tiny
from tests.runtime.conformance import tiny_cogvideox_dir

__all__ = ["tiny_cogvideox_dir", "tiny_dirs"]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny family except plain CogVideoX (see `tiny_cogvideox_dir`)."""
    root = tmp_path_factory.mktemp("tiny")
    families = (
        "cogvideox-i2v",
        "cogvideox-long",
        "t2v-zero",
        "t2v-zero-controlnet",
        "t2v-zero-pix2pix",
        "ltx",
        "wan",
        "wan-vace",
        "wan2.2",
    )
    return {f: build_tiny(f, root / f) for f in families}
