"""Fixtures of the catalog tests: the tiny CogVideoX weights the hub stand-in serves."""

from tests.runtime.conformance import tiny_cogvideox_dir

__all__ = ["tiny_cogvideox_dir"]
