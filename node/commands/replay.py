"""`framecast node replay JOB`: level 3 of docs/protocol.md §8, re-running a job with
its signed spec and comparing frames with the delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from framecast.node.commands.options import (
    _WEIGHTS_DIR,
    _chosen_network,
    _settings,
    config_option,
    network_option,
)
from framecast.node.config import framecast_home
from framecast.shared.cli_params import JOB_ID, Seconds


@click.command("replay")
@click.argument("job_id", metavar="JOB", type=JOB_ID)
@config_option
@click.option(
    "--result",
    "result_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The job's verified result folder (default: fetched by the CID delivered on chain).",
)
@click.option("--gateway", metavar="URL", help="Trustless gateway to fetch the result from.")
@network_option
@click.option(
    "--deployment",
    "deployment_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deployment file to use instead of the network's (default: the node config's).",
)
@click.option("--rpc-url", metavar="URL", help="RPC endpoint (default: the node config's).")
@_WEIGHTS_DIR
@click.option(
    "--timeout",
    type=Seconds(0, 7 * 24 * 3600, low_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds the replay may run.",
)
@click.option(
    "--replica",
    type=click.IntRange(min=0),
    help="Replicated job: which replica's revealed result to replay (its index).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def replay(
    job_id: int,
    config_path: Path,
    result_dir: Path | None,
    gateway: str | None,
    deployment_path: Path | None,
    rpc_url: str | None,
    weights_dir: Path | None,
    timeout: float,
    replica: int | None,
    as_json: bool,
) -> None:
    """Re-run JOB with its signed spec and compare frames with the delivery.

    Exit 0 on an exact or perceptual match, 1 on a mismatch.
    """
    from framecast.node.config import node_network
    from framecast.node.replay import (
        fetch_result,
        new_work_dir,
        read_chain_job,
        replay_job,
        store_fetcher,
    )
    from framecast.node.wiring import runtime_factory
    from framecast.shared.chain.bindings import Market
    from framecast.shared.errors import VerificationFailed
    from framecast.shared.networks import check_no_conflict, connect_network

    settings = _settings(config_path)
    if weights_dir is not None:
        settings = settings.model_copy(update={"weights_dir": weights_dir})
    if deployment_path is not None:
        check_no_conflict(_chosen_network(), deployment_path, framecast_home())
        settings = settings.model_copy(update={"deployment": deployment_path})
    if rpc_url is not None:
        settings = settings.model_copy(update={"rpc_url": rpc_url})
    network = node_network(settings)
    deployment = network.deployment
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    chain_job = read_chain_job(
        Market(w3, deployment.market), job_id, from_block=deployment.deployed_block, replica=replica
    )
    if chain_job.result_cid is None:
        raise VerificationFailed(
            f"job {job_id} has no delivery on chain to replay",
            fix=f"wait for delivery (`framecast status {job_id} --wait`)",
        )
    from framecast.shared.ipfs.store import open_store

    work_dir = new_work_dir(settings.state_dir, job_id)
    store = settings.store
    if result_dir is None:
        result_dir = work_dir / "delivered"
        fetch_result(chain_job.result_cid, result_dir, store=store, gateway_url=gateway)
    make_runtime, image_digest = runtime_factory(settings)
    click.echo(f"replaying job {job_id} on the {settings.runtime} runtime…", err=True)
    runtime = make_runtime()
    try:
        report = replay_job(
            job_id=job_id,
            spec_bytes=chain_job.spec,
            result_dir=result_dir,
            runtime=runtime,
            runtime_name=settings.runtime,
            image_digest=image_digest,
            weights_root=settings.weights_dir,
            work_dir=work_dir,
            chain_frames_digest=chain_job.frames_digest,
            timeout_s=timeout,
            # Inputs (image-to-video, control) come from the node's store, as in the agent.
            fetch_input=store_fetcher(open_store(store)),
        )
    finally:
        runtime.close()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        _render_replay(report)
    if not report.passed:
        raise VerificationFailed(
            f"replay of job {job_id}: mismatch ({report.reason})",
            fix=f"dispute it with `framecast dispute {job_id}` in the challenge window; "
            f"the replay is kept in {report.replay_dir}",
        )


def _render_replay(report: Any) -> None:
    color = {"exact": "green", "perceptual": "yellow"}.get(report.verdict, "red")
    click.secho(f"replay of job {report.job_id}: {report.verdict}", fg=color)
    env = report.replay_environment
    click.echo(
        f"  ran      {report.model} seed {report.seed} on {env.runtime}/{env.device}"
        f"{' ' + env.gpu if env.gpu else ''} (torch {env.torch}) in {report.replay_seconds:.1f} s"
    )
    click.echo(f"  chain    {report.chain_frames_digest}")
    click.echo(f"  replay   {report.replay_frames_digest}")
    if report.environment_differences:
        click.echo(f"  differs  {', '.join(report.environment_differences)}")
    click.echo(f"  reason   {report.reason}")
    click.echo(f"  files    {report.replay_dir}")
