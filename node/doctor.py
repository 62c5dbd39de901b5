"""`framecast node doctor`: check what a provider needs and say what to fix.

Each check is independent and reports `ok`, `warn` or `fail` with a one-line detail and,
unless ok, the fix. The order follows a provider's setup: the GPUs and their driver, the
driver against the runner image's CUDA, Docker's GPU support, which configured models fit
which card (and with which memory profile), disk for the weights not yet pulled, the
weights present and verified, the chain (reachable, key funded, bond), the advertised URL,
and the clock against the RPC server's.

External systems come in as arguments (the GPU detector, the Docker probe, the HTTP
client), so tests describe cards and use real servers; `run_doctor` wires the real ones.
"""

from __future__ import annotations

import email.utils
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from framecast.node.config import NodeSettings, node_network
from framecast.node.gpus import GpuDetector, detect_gpus, plan_models
from framecast.node.models import check as check_weights
from framecast.shared.amounts import format_fcc
from framecast.shared.catalog import CatalogEntry, get_entry
from framecast.shared.catalog.fit import GpuCard
from framecast.shared.errors import FramecastError

Status = Literal["ok", "warn", "fail"]

#: The least Linux driver each CUDA toolkit release needs (NVIDIA's CUDA release notes,
#: table 3, "Toolkit Driver Version"). Newer drivers run older CUDA; a card's own report
#: (nvidia-smi's "CUDA Version") is preferred when present.
MIN_DRIVER: dict[str, str] = {
    "11.8": "520.61.05",
    "12.0": "525.60.13",
    "12.1": "530.30.02",
    "12.2": "535.54.03",
    "12.3": "545.23.06",
    "12.4": "550.54.14",
    "12.5": "555.42.02",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
}
#: CUDA of the runner image when it cannot be read from the image (docker/runner.cuda.Dockerfile).
DEFAULT_IMAGE_CUDA = "12.4"
#: Clock skew (seconds) beyond which deadlines and signed reports go wrong.
SKEW_WARN_S = 5.0
SKEW_FAIL_S = 30.0


@dataclass(frozen=True)
class DoctorCheck:
    """One check's outcome."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            **({"data": self.data} if self.data else {}),
        }


@dataclass(frozen=True)
class DoctorReport:
    checks: list[DoctorCheck]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_json() for c in self.checks]}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


#: Probes Docker's GPU support for an image; returns the daemon's runtimes or raises.
DockerProbe = Callable[[str], dict[str, Any]]


def check_gpus(cards: Sequence[GpuCard], entries: Sequence[CatalogEntry]) -> DoctorCheck:
    if not cards:
        gpu_models = [e.id for e in entries if e.requires_gpu]
        if gpu_models:
            return DoctorCheck(
                "gpus",
                "fail",
                f"no NVIDIA GPU found (nvidia-smi, torch.cuda); {', '.join(gpu_models)} need one",
                "install the NVIDIA driver (`nvidia-smi` must list the cards), or serve CPU models",
            )
        return DoctorCheck("gpus", "ok", "no GPU; the configured models run on the CPU")
    listed = "; ".join(
        f"#{c.index} {c.name}: {c.memory_gib:.1f} GiB, driver {c.driver or '?'}, "
        f"CUDA {c.cuda or '?'}"
        for c in cards
    )
    return DoctorCheck("gpus", "ok", listed, data={"gpus": [c.model_dump() for c in cards]})


def check_driver(cards: Sequence[GpuCard], image_cuda: str | None) -> DoctorCheck:
    """The driver must run the image's CUDA: a card's reported CUDA, else the driver table."""
    if not cards:
        return DoctorCheck("driver", "ok", "no GPU: no driver needed")
    cuda = image_cuda or DEFAULT_IMAGE_CUDA
    too_old = []
    for card in cards:
        if card.cuda is not None:
            if _version(card.cuda) < _version(cuda):
                too_old.append(f"#{card.index} supports CUDA {card.cuda} (driver {card.driver})")
            continue
        need = MIN_DRIVER.get(cuda)
        if card.driver and need and _version(card.driver) < _version(need):
            too_old.append(f"#{card.index} has driver {card.driver}, CUDA {cuda} needs {need}")
    if too_old:
        need = MIN_DRIVER.get(cuda, "a newer one")
        return DoctorCheck(
            "driver",
            "fail",
            f"the runner image needs CUDA {cuda}; " + "; ".join(too_old),
            f"upgrade the NVIDIA driver to {need} or newer (CUDA {cuda}), then reboot",
        )
    return DoctorCheck("driver", "ok", f"every GPU's driver runs the image's CUDA {cuda}")


def check_docker(
    settings: NodeSettings, cards: Sequence[GpuCard], probe: DockerProbe
) -> DoctorCheck:
    if settings.runtime != "docker":
        return DoctorCheck("docker", "ok", "runtime = process: Docker is not used")
    if settings.docker_image is None:
        return DoctorCheck(
            "docker",
            "fail",
            "runtime = docker but no docker_image is configured",
            "set docker_image (pinned by digest) in node.toml",
        )
    if not cards:
        return DoctorCheck("docker", "ok", "no GPU: containers run without a device request")
    try:
        runtimes = probe(settings.docker_image)
    except FramecastError as exc:
        no_runtime = "could not select device driver" in exc.message or "GPU support" in exc.message
        return DoctorCheck(
            "docker",
            "fail",
            ("Docker has no NVIDIA runtime: " if no_runtime else "") + exc.message,
            "install nvidia-container-toolkit, run `nvidia-ctk runtime configure --runtime=docker` "
            "and restart dockerd"
            if no_runtime
            else exc.fix,
        )
    return DoctorCheck(
        "docker",
        "ok",
        f"a GPU container of {settings.docker_image} started "
        f"(runtimes: {', '.join(sorted(runtimes))})",
    )


def check_fit(
    settings: NodeSettings, entries: Sequence[CatalogEntry], cards: Sequence[GpuCard]
) -> DoctorCheck:
    plans, refused = plan_models(entries, cards, settings.memory_profiles)
    data = {
        "plans": {m: p.as_json() for m, p in plans.items()},
        "refused": refused,
    }
    served = "; ".join(
        f"{m}: {p.profile.name} ({p.profile.describe()}, {p.profile.vram_gb:g} GiB"
        f"{'' if p.profile.numerics == 'reference' else ', numerics ' + p.profile.numerics})"
        f" on {p.card.name if p.card else 'the CPU'}"
        for m, p in plans.items()
    )
    if refused:
        return DoctorCheck(
            "fit",
            "fail" if not plans else "warn",
            "; ".join(refused.values()) + (f". Served: {served}" if served else ""),
            "drop those models from node.toml `models` (or use a card they fit on; "
            "`framecast catalog fit` lists them)",
            data,
        )
    return DoctorCheck("fit", "ok", served or "no models configured", data=data)


def check_disk(settings: NodeSettings, entries: Sequence[CatalogEntry]) -> DoctorCheck:
    root = settings.weights_dir
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    missing = [e for e in entries if not (root / e.id).is_dir() and e.tiny is None]
    unknown = [e.id for e in missing if e.weights_bytes is None]
    need = sum(e.weights_bytes or 0 for e in missing)
    data = {"free_bytes": free, "needed_bytes": need, "path": str(probe)}
    if need > free:
        return DoctorCheck(
            "disk",
            "fail",
            f"the weights still to pull need {need / 1e9:.1f} GB; "
            f"{probe} has {free / 1e9:.1f} GB free",
            "free space or point weights_dir at a bigger disk",
            data,
        )
    if unknown:
        return DoctorCheck(
            "disk",
            "warn",
            f"{free / 1e9:.1f} GB free; the size of {', '.join(unknown)} is not in the catalog",
            "pin them (`framecast catalog pin`) to record their size",
            data,
        )
    return DoctorCheck(
        "disk", "ok", f"{free / 1e9:.1f} GB free, {need / 1e9:.1f} GB to pull", data=data
    )


def check_weights_present(settings: NodeSettings, entries: Sequence[CatalogEntry]) -> DoctorCheck:
    bad = []
    partial = []
    for entry in entries:
        state = check_weights(entry.id, settings.weights_dir)
        line = f"{entry.id}: {state.state}" + (f" ({state.problem})" if state.problem else "")
        if state.state == "incomplete":
            partial.append(line)  # the model runs; jobs naming a style's LoRA would not
        elif state.state != "verified":
            bad.append(line)
    if partial and not bad:
        return DoctorCheck(
            "weights",
            "warn",
            "; ".join(partial),
            "pull the model again to fetch its styles' LoRAs (`framecast node models pull`)",
        )
    if bad:
        return DoctorCheck(
            "weights",
            "fail",
            "; ".join(bad),
            "run `framecast node models pull MODEL` (tiny models: `framecast node init`)",
        )
    return DoctorCheck("weights", "ok", f"{len(entries)} model(s) present and verified")


def check_chain(settings: NodeSettings) -> list[DoctorCheck]:
    """Chain reachable, key funded for gas, bond registered; the RPC's clock."""
    from framecast.shared.chain.bindings import bind
    from framecast.shared.keystore import keystore_address
    from framecast.shared.networks import connect_network

    try:
        network = node_network(settings)
        w3 = connect_network(network, timeout=settings.rpc_timeout_s)
        _credits, market = bind(w3, network.deployment)
    except FramecastError as exc:
        return [DoctorCheck("chain", "fail", exc.message, exc.fix)]
    checks = [
        DoctorCheck(
            "chain", "ok", f"{network.rpc_url}: chain {network.deployment.chain_id}, market found"
        )
    ]
    address = keystore_address(settings.keystore)
    if address is None:
        checks.append(
            DoctorCheck(
                "key",
                "fail",
                f"no provider keystore at {settings.keystore}",
                "create one with `framecast node init`",
            )
        )
        return [*checks, _clock(network.rpc_url, settings.rpc_timeout_s)]
    balance = int(w3.eth.get_balance(w3.to_checksum_address(address)))
    checks.append(
        DoctorCheck(
            "key", "ok", f"{address} holds {format_fcc(balance, unit=False)} (native token) for gas"
        )
        if balance > 0
        else DoctorCheck(
            "key",
            "fail",
            f"{address} holds no native token to pay gas",
            "send it some (on the devnet: `framecast devnet up` funds the named accounts)",
        )
    )
    view = market.get_provider(address)
    min_bond = network.deployment.params.min_bond
    if not view.registered:
        checks.append(
            DoctorCheck(
                "bond",
                "fail",
                f"{address} is not a registered provider",
                f"register with a bond of at least {format_fcc(min_bond)}: "
                "`framecast node register --bond AMOUNT`",
            )
        )
    elif view.exit_available_at:
        checks.append(
            DoctorCheck("bond", "fail", "the provider is exiting", "register again to serve")
        )
    else:
        checks.append(
            DoctorCheck(
                "bond",
                "ok",
                f"bond {format_fcc(view.bond)}, {format_fcc(view.unlocked)} free for collateral",
            )
        )
    checks.append(_clock(network.rpc_url, settings.rpc_timeout_s))
    return checks


def _clock(rpc_url: str, timeout_s: float) -> DoctorCheck:
    """This host's clock against the RPC server's HTTP `Date` (deadlines are chain time)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    try:
        before = time.time()
        response = httpx.post(rpc_url, json=body, timeout=timeout_s)
        after = time.time()
    except httpx.HTTPError as exc:
        return DoctorCheck(
            "clock", "warn", f"could not ask {rpc_url} the time: {exc}", "check the RPC"
        )
    header = response.headers.get("date")
    if not header:
        return DoctorCheck(
            "clock", "warn", "the RPC sends no Date header; skew unknown", "check NTP (timedatectl)"
        )
    theirs = email.utils.parsedate_to_datetime(header).timestamp()
    skew = (before + after) / 2 - theirs
    # Date has whole seconds: up to 1 s of the skew is rounding.
    status: Status = (
        "ok" if abs(skew) < SKEW_WARN_S else "warn" if abs(skew) < SKEW_FAIL_S else "fail"
    )
    return DoctorCheck(
        "clock",
        status,
        f"this host is {skew:+.1f} s from {rpc_url}'s clock",
        None if status == "ok" else "sync the clock (NTP: `timedatectl set-ntp true`)",
        {"skew_s": round(skew, 3)},
    )


def check_advertised(settings: NodeSettings, client: httpx.Client) -> DoctorCheck:
    try:
        rpc_url = node_network(settings).rpc_url
        url = settings.advertised_url(rpc_url)
    except FramecastError as exc:
        return DoctorCheck("advertised", "fail", exc.message, exc.fix)
    if url is None:
        return DoctorCheck(
            "advertised",
            "warn",
            "no HTTP server configured: clients cannot follow jobs",
            "set http_bind and advertise_url",
        )
    try:
        response = client.get(url.rstrip("/") + "/healthz", timeout=3.0)
    except httpx.HTTPError as exc:
        return DoctorCheck(
            "advertised",
            "warn",
            f"{url}/healthz does not answer ({type(exc).__name__}); "
            "fine if the node is not running",
            "start `framecast node run`, and open the port to other hosts",
        )
    return DoctorCheck(
        "advertised",
        "ok" if response.status_code < 500 else "warn",
        f"{url}/healthz answered {response.status_code}",
    )


def docker_probe(image: str) -> dict[str, Any]:
    """The real probe: the Docker adapter's GPU container test."""
    from framecast.node.runtime.docker import connect, probe_gpu

    client = connect(timeout_s=30)
    try:
        return probe_gpu(client, image)
    finally:
        client.close()


def image_cuda(settings: NodeSettings) -> str | None:
    """CUDA_VERSION from the runner image's environment (NVIDIA's base images set it)."""
    if settings.runtime != "docker" or settings.docker_image is None:
        return None
    try:
        from framecast.node.runtime.docker import connect

        client = connect(timeout_s=10)
        try:
            env = client.images.get(settings.docker_image).attrs["Config"].get("Env") or []
        finally:
            client.close()
    except Exception:
        return None
    for item in env:
        key, _, value = item.partition("=")
        if key == "CUDA_VERSION":
            return ".".join(value.split(".")[:2])
    return None


def run_doctor(
    settings: NodeSettings,
    *,
    detect: GpuDetector = detect_gpus,
    probe: DockerProbe = docker_probe,
    cuda_of_image: Callable[[NodeSettings], str | None] = image_cuda,
    chain: bool = True,
    config_path: Path | None = None,
) -> DoctorReport:
    """Every check, in setup order (`config_path`: the node config, reported when missing)."""
    entries = [get_entry(m) for m in settings.models]
    cards = detect()
    checks = []
    if config_path is not None and not config_path.exists():
        checks.append(
            DoctorCheck(
                "config",
                "warn",
                f"no node config at {config_path}: checking the defaults",
                "create one with `framecast node init`",
            )
        )
    checks += [
        check_gpus(cards, entries),
        check_driver(cards, cuda_of_image(settings)),
        check_docker(settings, cards, probe),
        check_fit(settings, entries, cards),
        check_disk(settings, entries),
        check_weights_present(settings, entries),
    ]
    if chain:
        checks += check_chain(settings)
    with httpx.Client() as client:
        checks.append(check_advertised(settings, client))
    return DoctorReport(checks)


__all__ = [
    "MIN_DRIVER",
    "DoctorCheck",
    "DoctorReport",
    "check_driver",
    "check_fit",
    "run_doctor",
]
