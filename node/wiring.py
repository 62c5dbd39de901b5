"""The node's composition root: the one place that turns settings into adapters."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from framecast.node.agent import Agent, AgentDeps, RuntimeFactory
from framecast.node.config import NodeSettings, node_network
from framecast.node.http import NodeRoutes
from framecast.node.metrics import NodeMetrics, health_report
from framecast.node.runtime.base import ContainerRuntime
from framecast.node.state import StateStore
from framecast.shared.chain.bindings import bind
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import ConfigError
from framecast.shared.ipfs.store import open_store
from framecast.shared.networks import connect_network


def runtime_factory(settings: NodeSettings) -> tuple[RuntimeFactory, str | None]:
    """A factory of runtimes for the configured kind, and the image digest if any."""
    log_dir = settings.state_dir / "runner"
    if settings.runtime == "process":
        from framecast.node.runtime.process import ProcessRuntime, stop_stale_runners

        if log_dir.is_dir():
            # At start, not at the first job: a runner left by a node killed with -9 holds
            # memory (a model on the GPU) until someone stops it.
            stop_stale_runners(log_dir)

        def make_process() -> ContainerRuntime:
            return ProcessRuntime(log_dir=log_dir)

        return make_process, None
    if settings.runtime == "docker":
        if not settings.docker_image:
            raise ConfigError(
                "runtime = docker needs docker_image",
                fix="set docker_image to the runner image (pinned by digest) in the node config",
            )
        from framecast.node.runtime.docker import DockerRuntime

        # Resolving the image once pins every job to the same bytes; its ID goes into the
        # receipts. Later runtimes (one per GPU slot) reuse the resolved ID.
        first = DockerRuntime(settings.docker_image)
        image_id = first.image_id
        spare: list[ContainerRuntime] = [first]

        def make_docker() -> ContainerRuntime:
            return spare.pop() if spare else DockerRuntime(image_id)

        return make_docker, image_id
    raise ConfigError(f"unknown runtime {settings.runtime!r}", fix='use "process" or "docker"')


def build_agent(settings: NodeSettings, account: LocalAccount) -> Agent:
    """Connect, bind and open everything the agent needs."""
    network = node_network(settings)
    deployment = network.deployment
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    _, market = bind(w3, deployment, TxSender(w3, account))
    # The network's habits are floors/ceilings the config may tighten, never loosen: at least
    # its confirmations, at most its getLogs span.
    settings = settings.model_copy(
        update={
            "confirmations": max(settings.confirmations, network.confirmations),
            "backfill_chunk": min(settings.backfill_chunk, network.log_range_limit),
        }
    )
    store_settings = settings.store
    make_runtime, image = runtime_factory(settings)
    return Agent(
        AgentDeps(
            settings=settings,
            deployment=deployment,
            w3=w3,
            market=market,
            account=account,
            state=StateStore(settings.database),
            store=open_store(store_settings),
            runtime_factory=make_runtime,
            runtime_name=settings.runtime,
            image_digest=image,
            metrics=NodeMetrics(settings.gpu_slots),
        )
    )


def node_routes(agent: Agent) -> NodeRoutes:
    """What the node's HTTP server answers with, from a built agent."""
    return NodeRoutes(
        store=agent.d.store,
        metrics=agent.d.metrics,
        health=lambda: health_report(agent.last_poll_ok, agent.state.counts()),
        jobs=agent.job_report,
        upload_policy=agent.upload_policy,
        max_upload_bytes=agent.settings.input_max_bytes,
    )
