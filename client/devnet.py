"""The local development chain: anvil from npm, our contracts, funded named accounts.

`framecast devnet up` starts anvil in the background (its own session, so it outlives the
command), deploys from the committed artifacts and writes the deployment file every other
command reads. Devnet keys are anvil's public test mnemonic: never use them elsewhere.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from web3 import Web3

from framecast.shared.chain.bindings import Credits
from framecast.shared.chain.connection import connect
from framecast.shared.chain.deploy import FCC, deploy_contracts
from framecast.shared.chain.devnet import (
    DEVNET_CHAIN_ID,
    DEVNET_MNEMONIC,
    NAMED_ACCOUNTS,
    devnet_account,
)
from framecast.shared.chain.sender import TxSender
from framecast.shared.deployment import Deployment, load_deployment
from framecast.shared.errors import ConfigError, RpcUnavailable

#: Credits minted to every named account except the deployer.
DEVNET_FUNDING = 10_000 * FCC

__all__ = ["DEVNET_CHAIN_ID", "NAMED_ACCOUNTS", "devnet_account"]


def find_tool(name: str) -> str:
    """A Foundry binary: $FRAMECAST_<NAME>, PATH, then this checkout's node_modules."""
    override = os.environ.get(f"FRAMECAST_{name.upper()}")
    if override:
        return override
    found = shutil.which(name)
    if found:
        return found
    checkout = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / name
    if checkout.exists():
        return str(checkout)
    raise ConfigError(
        f"`{name}` (Foundry) is not installed",
        fix="run `make setup` (npm installs @foundry-rs/" + name + ") or put it on PATH",
    )


@dataclass(frozen=True)
class DevnetPaths:
    """Files of one devnet under the framecast home."""

    root: Path

    @property
    def deployment(self) -> Path:
        return self.root / "deployment.json"

    @property
    def pid(self) -> Path:
        return self.root / "anvil.pid"

    @property
    def log(self) -> Path:
        return self.root / "anvil.log"

    @property
    def bind(self) -> Path:
        """The address anvil listens on (`devnet up --host`)."""
        return self.root / "anvil.host"

    def bound_host(self) -> str:
        try:
            return self.bind.read_text().strip() or LOOPBACK
        except FileNotFoundError:
            return LOOPBACK


LOOPBACK = "127.0.0.1"


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def local_url(host: str, port: int) -> str:
    """The URL this machine uses for an anvil bound to ``host`` (a wildcard: loopback)."""
    if ipaddress.ip_address(host).is_unspecified:
        return _url("::1" if ":" in host else LOOPBACK, port)
    return _url(host, port)


def shared_url(host: str, port: int) -> str:
    """The URL other hosts use: the bound address, or this host's name for a wildcard."""
    if ipaddress.ip_address(host).is_unspecified:
        return _url(socket.gethostname(), port)
    return _url(host, port)


def start_anvil(
    port: int,
    log_path: Path,
    *,
    detach: bool,
    state_path: Path | None = None,
    block_time_s: int | None = None,
    host: str = LOOPBACK,
    chain_id: int = DEVNET_CHAIN_ID,
) -> subprocess.Popen[bytes]:
    """Start anvil on `host`:`port` and wait until it answers.

    ``host`` is 127.0.0.1 unless other hosts must reach the chain (an address of this
    machine, or 0.0.0.0 for all). ``chain_id`` is the devnet's unless a test wants a
    chain that is not the devnet.

    With ``state_path`` the chain is loaded from it (if present) and dumped to it on exit,
    so a stopped devnet comes back with its contracts, balances and jobs. With
    ``block_time_s`` anvil also mines an empty block at that interval (mixed mining:
    transactions still mine at once), so chain time moves on an idle devnet and deadlines
    pass as they would on a real chain.
    """
    _require_free_port(port, host)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        command = [find_tool("anvil"), "--host", host, "--port", str(port)]
        command += ["--chain-id", str(chain_id), "--mnemonic", DEVNET_MNEMONIC]
        command += ["--accounts", str(len(NAMED_ACCOUNTS))]
        if state_path is not None:
            command += ["--state", str(state_path)]
        if block_time_s is not None:
            command += ["--block-time", str(block_time_s), "--mixed-mining"]
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # A detached anvil is its own session so it survives the CLI that started it.
            start_new_session=detach,
        )
    url = local_url(host, port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(
                f"anvil exited with code {process.returncode}; see {log_path}",
                fix=f"is port {port} already in use? try --port",
            )
        try:
            requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        # The answer must come from our anvil, not from one that took the port meanwhile.
        if process.poll() is None:
            return process
    process.kill()
    raise RpcUnavailable(url, "anvil did not start within 15 s")


def _require_free_port(port: int, host: str = LOOPBACK) -> None:
    """Refuse a busy port: a second anvil would fail to bind while the first one answered."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        # SO_REUSEADDR: connections of a stopped anvil in TIME_WAIT do not count (anvil
        # itself binds that way); only a socket still listening on the port makes it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"{host} is not an address of this machine",
                    fix="pass --host one of this machine's addresses (`ip -brief address`), "
                    "or 0.0.0.0 for all of them",
                ) from None
            raise ConfigError(
                f"port {port} on {host} is already in use (another devnet or node?)",
                fix="stop it (`framecast devnet down` with the FRAMECAST_HOME that started it) "
                "or choose another port with --port",
            ) from None


def deploy_devnet(rpc_url: str) -> Deployment:
    """Deploy to a running devnet chain and fund the named accounts."""
    w3 = connect(rpc_url, expected_chain_id=DEVNET_CHAIN_ID)
    deployer = devnet_account("deployer")
    deployment = deploy_contracts(
        w3, deployer, arbiter=devnet_account("arbiter").address, rpc_url=rpc_url
    )
    credits = Credits(w3, deployment.credits, TxSender(w3, deployer))
    accounts = {}
    for name in NAMED_ACCOUNTS:
        address = devnet_account(name).address
        accounts[name] = address
        if name != "deployer":
            credits.mint(address, DEVNET_FUNDING)
    return deployment.model_copy(update={"accounts": accounts})


def _pid_alive(pid: int) -> bool:
    try:
        # Reap it if it is our own exited child (tests start anvil in-process).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def devnet_status(paths: DevnetPaths) -> Deployment | None:
    """The running devnet's deployment, or None when nothing answers there."""
    if not paths.deployment.exists():
        return None
    deployment = load_deployment(paths.deployment)
    try:
        w3 = connect(deployment.rpc_url, expected_chain_id=deployment.chain_id, timeout=2)
    except RpcUnavailable:
        return None
    if not w3.eth.get_code(Web3.to_checksum_address(deployment.market)):
        return None
    return deployment


def devnet_up(
    paths: DevnetPaths, port: int = 8545, host: str | None = None
) -> tuple[Deployment, bool]:
    """Start (or find running) the devnet; returns its deployment and whether it was started.

    ``host`` is the address anvil binds (default 127.0.0.1); a running devnet bound
    elsewhere is not silently kept for a different ``host``.
    """
    running = devnet_status(paths)
    if running is not None:
        bound = paths.bound_host()
        if host is not None and host != bound:
            raise ConfigError(
                f"the devnet already runs, bound to {bound}",
                fix=f"stop it with `framecast devnet down`, then `framecast devnet up --host "
                f"{host}` (its chain starts afresh)",
            )
        return running, False
    devnet_down(paths)
    host = host or LOOPBACK
    process = start_anvil(port, paths.log, detach=True, block_time_s=1, host=host)
    paths.pid.write_text(str(process.pid))
    paths.bind.write_text(host)
    try:
        deployment = deploy_devnet(local_url(host, port))
    except Exception:
        devnet_down(paths)
        raise
    deployment.save(paths.deployment)
    return deployment, True


def devnet_down(paths: DevnetPaths) -> bool:
    """Stop the devnet's anvil if this home started one; returns whether one was stopped."""
    paths.bind.unlink(missing_ok=True)
    if not paths.pid.exists():
        return False
    pid = int(paths.pid.read_text().strip() or 0)
    paths.pid.unlink()
    if pid <= 0 or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
