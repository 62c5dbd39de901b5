"""Client settings: one pydantic-settings object, from `FRAMECAST_*` env (and flags)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from framecast.client.devnet import DevnetPaths


class ClientSettings(BaseSettings):
    """Where the client keeps its state and which network it talks to."""

    model_config = SettingsConfigDict(env_prefix="FRAMECAST_", extra="ignore", allow_inf_nan=False)

    home: Path = Field(
        default_factory=lambda: Path.home() / ".framecast",
        description="State folder: wallets, devnet, downloads (FRAMECAST_HOME).",
    )
    network: str | None = Field(
        None,
        description="Network name, from the registry or <home>/networks (`framecast network "
        "list`); default `local`, this machine's devnet (FRAMECAST_NETWORK).",
    )
    deployment: Path | None = Field(
        None,
        description="Deployment file to use instead of a network's (FRAMECAST_DEPLOYMENT).",
    )
    rpc_url: str | None = Field(
        None,
        description="RPC endpoint; default: the network's (its FRAMECAST_RPC_<NAME> variable, "
        "then its file) (FRAMECAST_RPC_URL).",
    )
    wallet: str | None = Field(
        None,
        description="Wallet (keystore name) commands act as; default: the only one there is "
        "(FRAMECAST_WALLET).",
    )
    password: SecretStr | None = Field(
        None,
        description="Keystore password, for scripts (FRAMECAST_PASSWORD); prefer a prompt or "
        "a password file on shared machines: the environment of a process is readable by root.",
    )
    password_file: Path | None = Field(
        None,
        description="File whose first line is the keystore password (FRAMECAST_PASSWORD_FILE).",
    )
    keystore_scrypt_n: int = Field(
        262_144,
        ge=2,
        le=2**20,
        description="scrypt cost n for NEW keystores; geth's standard 262144 (r=8, p=1). FOR "
        "TESTS ONLY: a lower value makes the suite fast and keystores cheap to crack "
        "(FRAMECAST_KEYSTORE_SCRYPT_N).",
    )

    store_path: Path | None = Field(
        None,
        description="Embedded blockstore to fetch results from when it holds them; default "
        "<home>/blocks, which on the devnet is the store the local node pins into "
        "(FRAMECAST_STORE_PATH).",
    )
    gateway_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Trustless IPFS gateway to fetch results from; default: the provider's "
        "advertised gateway, else the embedded store (FRAMECAST_GATEWAY_URL).",
    )
    public_gateways: list[str] = Field(
        default_factory=list,
        description="Trustless IPFS gateways tried after the provider's own, in order "
        "(FRAMECAST_PUBLIC_GATEWAYS, a JSON list: '[\"https://gw.example\"]').",
    )
    kubo_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="A kubo RPC tried last for results it holds (FRAMECAST_KUBO_URL).",
    )
    source_timeout_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Most seconds one retrieval source may take per request; less when the "
        "challenge window is closing (FRAMECAST_SOURCE_TIMEOUT_S).",
    )
    claim_timeout_s: int = Field(
        600,
        ge=30,
        le=30 * 24 * 3600,
        description="Default seconds a submitted job waits for a claim before it can be "
        "reclaimed (FRAMECAST_CLAIM_TIMEOUT_S).",
    )
    delivery_window_s: int = Field(
        900,
        ge=60,
        le=7 * 24 * 3600,
        description="Default seconds a provider has from claim to delivery "
        "(FRAMECAST_DELIVERY_WINDOW_S).",
    )

    @field_validator("keystore_scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        # scrypt's n must be a power of two; say so here rather than at the first `wallet new`.
        if value & (value - 1):
            raise ValueError(f"scrypt n must be a power of two, got {value}")
        return value

    @property
    def devnet(self) -> DevnetPaths:
        # devnet.py pulls in web3 (seconds on a loaded machine): only commands that need
        # the devnet pay for it, not `wallet list`.
        from framecast.client.devnet import DevnetPaths

        return DevnetPaths(self.home / "devnet")

    @property
    def keystores(self) -> Path:
        return self.home / "keystores"

    @property
    def blocks(self) -> Path:
        return (self.store_path or self.home / "blocks").expanduser()

    @property
    def quarantine(self) -> Path:
        """Where downloaded results that fail verification are kept, one folder per job."""
        return self.home / "quarantine"

    @property
    def downloads(self) -> Path:
        """Default folder for `submit --wait` and `fetch` results, one folder per job."""
        return self.home / "jobs"
