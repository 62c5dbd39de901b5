"""Fixtures for the multi-host tests: a lab of hosts in network namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.lab import Lab, lab_unavailable


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with Lab(tmp_path / "hosts") as built:
        yield built
