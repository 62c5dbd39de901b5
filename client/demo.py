"""`framecast demo`: the whole loop on one machine, on the embedded default.

devnet (anvil + contracts) → a provider node in its own process (tiny model, process
runtime, embedded store) → a wallet funded from the faucet → a signed prompt → follow →
verified fetch → settlement after the challenge window → credits before and after.

Everything the demo creates lives under ``<home>/demo``; the devnet is left running so the
user can keep exploring (`framecast devnet down` stops it).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from framecast.client.config import ClientSettings
from framecast.shared.errors import ConfigError, FramecastError, NodeError

DEMO_WALLET = "demo-alice"
DEMO_PROVIDER = "provider-1"
DEMO_MODEL = "tiny-cogvideox"
#: The tiny test model's text encoder takes 16 tokens of a small fixed vocabulary; longer or
#: out-of-vocabulary prompts are refused (never silently truncated) and the node releases them.
DEMO_PROMPT = "a red cat walks in the city"
DEMO_BOND = "200"
DEMO_DEPOSIT = 20 * 10**18
#: `framecast explorer`'s default --port: the demo prints its page for the demo job.
EXPLORER_PORT = 8700

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoPaths:
    """The demo's own files under the framecast home."""

    root: Path

    @property
    def node_config(self) -> Path:
        return self.root / "node.toml"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def node_log(self) -> Path:
        return self.root / "node.log"

    @property
    def output(self) -> Path:
        return self.root / "result"


def cli(*args: str) -> list[str]:
    """This installation's `framecast` command (whatever venv runs the demo)."""
    return [sys.executable, "-m", "framecast.client.cli", *args]


def ensure_password(paths: DemoPaths) -> Path:
    """A random keystore password for the demo's wallet and node, in a 0600 file."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not paths.password_file.exists():
        fd = os.open(paths.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return paths.password_file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise NodeError(
            f"demo step `{what}` failed: {detail[-1] if detail else done.returncode}",
            fix="rerun with --debug, or look at the output of the same command run by hand",
        )


class NodeProcess:
    """The provider node, started as `framecast node run` in its own process."""

    def __init__(self, paths: DemoPaths, settings: ClientSettings) -> None:
        self.paths = paths
        self.env = {
            **os.environ,
            "FRAMECAST_HOME": str(settings.home),
            "FRAMECAST_PASSWORD_FILE": str(paths.password_file),
            # The node joins the devnet the demo started, whatever network the shell chose.
            "FRAMECAST_NETWORK": "local",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def prepare(self, say: Say) -> None:
        """Write the node config (keystore, tiny weights) once; register its bond once."""
        if not self.paths.node_config.exists():
            say("setting up the provider node (keystore, tiny model weights)…")
            port = _free_port()
            env = {**self.env, "FRAMECAST_NODE_METRICS_PORT": str(port)}
            _run(
                cli(
                    "node", "init", "--config", str(self.paths.node_config),
                    "--devnet-account", DEMO_PROVIDER, "--model", DEMO_MODEL,
                    "--password-file", str(self.paths.password_file),
                    "--state-dir", str(self.paths.root / "node-state"),
                ),
                env,
                "node init",
            )  # fmt: skip

    def register(self, say: Say) -> None:
        say(f"registering {DEMO_PROVIDER} as a provider with a {DEMO_BOND} FCC bond…")
        _run(
            cli("node", "register", "--config", str(self.paths.node_config), "--bond", DEMO_BOND),
            self.env,
            "node register",
        )

    def start(self, say: Say) -> None:
        say(f"starting the provider node (log: {self.paths.node_log})…")
        log = self.paths.node_log.open("ab")
        self.process = subprocess.Popen(
            cli("node", "run", "--config", str(self.paths.node_config)),
            env=self.env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        from framecast.node.config import load_settings  # config only: no torch, no docker

        node_settings = load_settings(self.paths.node_config)
        self.metrics_url = f"http://{node_settings.metrics_host}:{node_settings.metrics_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeError(
                    f"the provider node exited with code {self.process.returncode}",
                    fix=f"read {self.paths.node_log}",
                )
            try:
                if httpx.get(self.metrics_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise NodeError("the provider node did not become healthy in 60 s",
                        fix=f"read {self.paths.node_log}")  # fmt: skip

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def check_environment() -> None:
    """Fail early, with the fix, when the demo's moving parts are not installed."""
    try:
        import framecast.node.cli  # noqa: F401  (the node group ships with the package)
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ConfigError(
            f"the provider node is not installed ({exc})", fix="run `make setup`"
        ) from None
    if subprocess.run(cli("--version"), capture_output=True, check=False).returncode != 0:
        raise ConfigError("`python -m framecast.client.cli` does not run", fix="run `make setup`")


__all__ = [
    "DEMO_DEPOSIT",
    "DEMO_MODEL",
    "DEMO_PROMPT",
    "DEMO_PROVIDER",
    "DEMO_WALLET",
    "DemoPaths",
    "FramecastError",
    "NodeProcess",
    "check_environment",
    "ensure_password",
]
