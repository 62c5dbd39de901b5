"""Where the contracts live: the deployment file written by `framecast devnet up` and read
by the client and the node for the `local` network (other networks: `shared/networks.py`)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framecast.shared.errors import ConfigError
from framecast.shared.request import Address


class MarketParams(BaseModel):
    """JobMarket's immutable parameters, recorded for clients and nodes."""

    model_config = ConfigDict(frozen=True)

    min_bond: int = Field(ge=0, description="Least provider bond (wei of FCC).")
    collateral_bps: int = Field(ge=0, le=100_000, description="Claim collateral, bps of price.")
    dispute_bond: int = Field(ge=0, description="Credits a client locks to dispute.")
    challenge_window: int = Field(gt=0, description="Seconds after delivery to dispute.")
    resolve_window: int = Field(gt=0, description="Seconds the arbiter has to decide.")
    exit_cooldown: int = Field(ge=0, description="Seconds from exit request to bond withdrawal.")
    protocol_fee_bps: int = Field(ge=0, le=1000, description="Fee at deployment, bps.")
    reveal_window: int = Field(
        gt=0, description="Seconds replicas have to reveal once all committed (replicated jobs)."
    )


class Deployment(BaseModel):
    """One network's contracts and the facts needed to talk to them safely."""

    model_config = ConfigDict(frozen=True)

    network: str = Field(description="Name, e.g. `devnet`.")
    chain_id: int = Field(gt=0, description="Chain id the contracts are on.")
    rpc_url: str = Field(description="Default RPC endpoint.")
    credits: Address = Field(description="Credits (ERC-20) address.")
    market: Address = Field(description="JobMarket address.")
    deployed_block: int = Field(ge=0, description="Block of deployment: event scans start here.")
    params: MarketParams
    accounts: dict[str, Address] = Field(
        default_factory=dict, description="Named funded accounts (devnet only)."
    )
    libraries: dict[str, Address] = Field(
        default_factory=dict,
        description="Libraries linked into JobMarket, by name (ReplicatedJobs); empty in files "
        "written before the market linked one.",
    )

    def save(self, path: Path) -> None:
        """Write atomically so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployment-")
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2) + "\n")
        Path(tmp).replace(path)


def load_deployment(path: Path) -> Deployment:
    """Read a deployment file, with errors that say how to get one."""
    try:
        return Deployment.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"no deployment file at {path}",
            fix="start the local chain with `framecast devnet up`, or choose another network "
            "with --network NAME (`framecast network list`)",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"deployment file {path} is a directory, not a file",
            fix="give the path of a deployment JSON file (--deployment / FRAMECAST_DEPLOYMENT)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read deployment file {path}: {exc.strerror or type(exc).__name__}",
            fix="check the file's path and permissions",
        ) from None
    except (ValidationError, json.JSONDecodeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            detail = f"`{where}`: {first['msg']}" if where else first["msg"]
        else:
            detail = str(exc)
        raise ConfigError(
            f"deployment file {path} is invalid ({detail})",
            fix="recreate it with `framecast devnet up` (or `framecast deploy`)",
        ) from None
