"""Fixtures of the runtime tests (the tiny model comes from the conformance suite)."""

from tests.runtime.conformance import tiny_cogvideox_dir

__all__ = ["tiny_cogvideox_dir"]
