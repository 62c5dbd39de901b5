"""Level 3 of `framecast verify`: ask the local node tooling to replay a job.

The client never imports the node, the runner or torch: it runs
`framecast node replay JOB --result DIR --json` as a subprocess (same Python) and parses
its `ReplayReport`. Replaying needs the node and pipelines extras and a node config with
the model's weights (`framecast node init`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import ValidationError

from framecast.shared.errors import ConfigError, VerificationFailed
from framecast.shared.replay_report import ReplayReport

INSTALL_FIX = (
    "install the replay tooling with pip install 'framecast[node,pipelines]', then run "
    "`framecast node init` (it writes the node config and builds tiny weights)"
)
#: Modules a replay needs that the client install does not bring.
REPLAY_MODULES = ("torch", "diffusers", "imageio_ffmpeg", "numpy")


def check_replay_available() -> None:
    """Raise `ConfigError` with the install fix unless the node command and pipelines exist."""
    missing = [m for m in REPLAY_MODULES if importlib.util.find_spec(m) is None]
    if not list(entry_points(group="framecast.commands", name="node")):
        missing.insert(0, "the `framecast node` command")
    if missing:
        raise ConfigError(f"replay needs {', '.join(missing)}", fix=INSTALL_FIX)


def replay_command(
    job_id: int,
    result_dir: Path,
    *,
    deployment: Path | None,
    rpc_url: str | None,
    network: str | None = None,
) -> list[str]:
    """The node command line (same interpreter, so the same install answers)."""
    command = [sys.executable, "-m", "framecast.client.cli"]
    if network is not None:
        command += ["--network", network]
    command += ["node", "replay", str(job_id), "--result", str(result_dir), "--json"]
    if deployment is not None:
        command += ["--deployment", str(deployment)]
    if rpc_url is not None:
        command += ["--rpc-url", rpc_url]
    return command


def run_replay(
    job_id: int,
    result_dir: Path,
    *,
    deployment: Path | None,
    rpc_url: str | None,
    network: str | None = None,
    timeout_s: float = 3900.0,
) -> ReplayReport:
    """Replay `job_id` against the verified `result_dir`; the report whatever the verdict.

    Raises `VerificationFailed` (or `ConfigError`) when the replay could not run at all,
    with the node command's own error line.
    """
    check_replay_available()
    command = replay_command(
        job_id, result_dir, deployment=deployment, rpc_url=rpc_url, network=network
    )
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise VerificationFailed(
            f"the replay of job {job_id} ran longer than {timeout_s:g} s",
            fix="run `framecast node replay` yourself with a larger --timeout",
        ) from None
    if done.stdout.strip():
        try:
            return ReplayReport.model_validate_json(done.stdout)
        except ValidationError:
            pass  # not a report: fall through to the error line
    error = _last_error_line(done.stderr) or f"exit code {done.returncode}"
    if "node config" in error and "does not exist" in error:
        raise ConfigError(f"replay cannot run: {error}", fix=INSTALL_FIX)
    raise VerificationFailed(
        f"the replay of job {job_id} could not run: {error}",
        fix="fix the cause above, or run `framecast node replay` yourself",
    )


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:") or line.startswith("Error:"):
            return line.removeprefix("error:").removeprefix("Error:").strip()
    return lines[-1] if lines else ""
