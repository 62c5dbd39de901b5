"""Fixtures for node tests: a provider agent wired to real anvil, the process runtime,
the tiny CogVideoX weights and the embedded store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framecast.node.agent import Agent, AgentDeps
from framecast.node.config import NodeSettings
from framecast.node.metrics import NodeMetrics
from framecast.node.runtime.base import Capacity, ContainerRuntime
from framecast.node.runtime.process import ProcessRuntime
from framecast.node.state import StateStore
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.store import StoreSettings
from tests.chain.conftest import FCC, fund_market, register
from tests.conftest import Chain
from tests.runtime.conformance import tiny_cogvideox_dir
from tests.runtime.docker_fixtures import docker_client, runner_image

__all__ = ["docker_client", "runner_image", "tiny_cogvideox_dir"]


@pytest.fixture
def weights_dir(tmp_path: Path, tiny_cogvideox_dir: Path) -> Path:
    root = tmp_path / "weights"
    root.mkdir()
    (root / "tiny-cogvideox").symlink_to(tiny_cogvideox_dir, target_is_directory=True)
    return root


@pytest.fixture
def market_ready(chain: Chain) -> Chain:
    fund_market(chain, "alice", 200 * FCC)
    register(chain, "provider-1")
    register(chain, "provider-2")
    return chain


AgentFactory = Callable[..., Agent]


@pytest.fixture
def make_agent(market_ready: Chain, weights_dir: Path, tmp_path: Path) -> Iterator[AgentFactory]:
    """Build agents; the same `name` reuses the same state dir (a restarted node)."""
    deployment_file = tmp_path / "deployment.json"
    market_ready.deployment.save(deployment_file)
    built: list[Agent] = []

    def make(
        name: str = "provider-1",
        *,
        runtime: Callable[[], ContainerRuntime] | None = None,
        runtime_name: str = "process",
        image_digest: str | None = None,
        capacity: Capacity | None = None,
        **overrides: object,
    ) -> Agent:
        state_dir = tmp_path / name
        fields: dict[str, object] = {
            "deployment": deployment_file,
            "models": ["tiny-cogvideox"],
            "weights_dir": weights_dir,
            "state_dir": state_dir,
            "store": StoreSettings(store_path=tmp_path / f"{name}-blocks"),
            "metrics_port": 0,
            "min_price_per_unit": 1000,
            "delivery_margin_s": 5,
            "poll_interval_s": 0.05,
            **overrides,
        }
        settings = NodeSettings(**fields)  # type: ignore[arg-type]
        agent = Agent(
            AgentDeps(
                settings=settings,
                deployment=market_ready.deployment,
                w3=market_ready.w3,
                market=market_ready.market(name),
                account=market_ready.account(name),
                state=StateStore(settings.database),
                store=LocalStore(tmp_path / f"{name}-blocks"),
                runtime_factory=runtime or (lambda: ProcessRuntime(log_dir=state_dir / "runner")),
                runtime_name=runtime_name,
                image_digest=image_digest,
                metrics=NodeMetrics(settings.gpu_slots),
                capacity=capacity,
            )
        )
        built.append(agent)
        return agent

    yield make
    for agent in built:
        agent.shutdown(grace_s=0)
        agent.state.close()
