"""Client settings: one pydantic-settings object, from `FRAMECAST_*` env (and flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from framecast.client.devnet import DevnetPaths


class ClientSettings(BaseSettings):
    """Where the client keeps its state and which network it talks to."""

    model_config = SettingsConfigDict(env_prefix="FRAMECAST_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".framecast",
        description="State folder: wallets, devnet, downloads (FRAMECAST_HOME).",
    )
    deployment: Path | None = Field(
        None, description="Deployment file; default: the devnet's (FRAMECAST_DEPLOYMENT)."
    )
    rpc_url: str | None = Field(
        None, description="RPC endpoint; default: the deployment's (FRAMECAST_RPC_URL)."
    )

    @property
    def devnet(self) -> DevnetPaths:
        return DevnetPaths(self.home / "devnet")

    @property
    def deployment_path(self) -> Path:
        return self.deployment or self.devnet.deployment
