"""The node's composition root: the one place that turns settings into adapters."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from web3 import Web3

from framecast.node.agent import Agent, AgentDeps, RuntimeFactory
from framecast.node.config import NodeSettings, node_network
from framecast.node.http import NodeRoutes
from framecast.node.metrics import NodeMetrics, health_report
from framecast.node.runtime.base import ContainerRuntime
from framecast.node.state import StateStore
from framecast.shared.chain.bindings import bind
from framecast.shared.chain.connection import OutageLog
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import ConfigError, RpcUnavailable
from framecast.shared.ipfs.store import ContentStore, open_store
from framecast.shared.networks import connect_network

if TYPE_CHECKING:  # ray is imported only inside the ray runtime module
    from framecast.node.runtime.cluster import RayCluster

log = logging.getLogger("framecast.node.agent")
#: Longest pause between two start-up tries while the RPC does not answer: the node is
#: up within about this of the RPC coming back (the same cap as the agent's outage backoff).
STARTUP_MAX_BACKOFF_S = 1.0


def ray_cluster(settings: NodeSettings) -> RayCluster:
    """The node's Ray cluster (runtime = ray), connected: unreachable is one clear error."""
    from framecast.node.runtime.cluster import RayCluster

    cluster = RayCluster(
        address=settings.ray_address,
        gpu_resource=settings.ray_gpu_resource,
        token_file=settings.ray_auth_token_file,
        weights_dir=settings.ray_weights_dir,
        max_jobs=settings.ray_max_jobs,
    )
    cluster.connect()
    return cluster


def runtime_factory(
    settings: NodeSettings, cluster: RayCluster | None = None
) -> tuple[RuntimeFactory, str | None]:
    """A factory of runtimes for the configured kind, and the image digest if any."""
    log_dir = settings.state_dir / "runner"
    if settings.runtime == "ray":
        pool = cluster or ray_cluster(settings)

        def make_ray() -> ContainerRuntime:
            return pool.runtime()

        return make_ray, None
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
        # The node's identity on this host: its state folder (one node per folder).
        owner = hashlib.sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:16]
        first = DockerRuntime(settings.docker_image, owner=owner)
        image_id = first.image_id
        spare: list[ContainerRuntime] = [first]

        def make_docker() -> ContainerRuntime:
            return spare.pop() if spare else DockerRuntime(image_id, owner=owner)

        return make_docker, image_id
    raise ConfigError(
        f"unknown runtime {settings.runtime!r}", fix='use "process", "docker" or "ray"'
    )


def until_chain_answers(
    settings: NodeSettings,
    attempt: Callable[[], object],
    *,
    stop: threading.Event,
    on_waiting: Callable[[RpcUnavailable | None], None] = lambda _exc: None,
) -> bool:
    """Call `attempt` until it gets past the RPC; False when `stop` was set first.

    Only `RpcUnavailable` (refused, timed out, rate-limited: the endpoint may come back) is
    waited out, with a capped backoff and one log line each way (`OutageLog`); every other
    error is a configuration error (a wrong chain id, no market at the address) and goes
    to the caller. `on_waiting` hears each failure, then None once through.
    """
    outage = OutageLog(log)
    backoff = 0.25
    while not stop.is_set():
        started = time.time()
        try:
            attempt()
        except RpcUnavailable as exc:
            if outage.since is None:
                log.warning(
                    "node not ready: rpc %s does not answer (%s); waiting for it, "
                    "/healthz says 503 meanwhile",
                    exc.url,
                    exc.reason,
                )
            outage.failed(exc, started)
            on_waiting(exc)
            stop.wait(backoff)
            backoff = min(STARTUP_MAX_BACKOFF_S, backoff * 2)
            continue
        outage.answered()
        on_waiting(None)
        return True
    return False


def connect_chain(settings: NodeSettings) -> Web3:
    """The network's RPC, checked: the chain id, and code at the deployment's addresses."""
    network = node_network(settings)
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    bind(w3, network.deployment)  # ChainError when the market is not there: a config error
    return w3


def build_agent(
    settings: NodeSettings,
    account: LocalAccount,
    *,
    w3: Web3 | None = None,
    store: ContentStore | None = None,
    metrics: NodeMetrics | None = None,
) -> Agent:
    """Connect (unless `w3` is given), bind and open everything the agent needs."""
    network = node_network(settings)
    deployment = network.deployment
    if w3 is None:
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
    cluster = ray_cluster(settings) if settings.runtime == "ray" else None
    make_runtime, image = runtime_factory(settings, cluster)
    return Agent(
        AgentDeps(
            settings=settings,
            deployment=deployment,
            w3=w3,
            market=market,
            account=account,
            state=StateStore(settings.database),
            store=store if store is not None else open_store(store_settings),
            runtime_factory=make_runtime,
            runtime_name=settings.runtime,
            image_digest=image,
            metrics=metrics if metrics is not None else NodeMetrics(settings.gpu_slots),
            capacity=cluster,
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
