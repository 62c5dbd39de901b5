"""`framecast explorer`: a read-only web app over the market, backed by an indexer.

* `store` — the index database (SQLite by default, PostgreSQL by URL), schema-versioned;
* `indexer` — the market's events into the index (catch-up, follow, restarts, reorgs);
* `pages` — the HTML pages, every foreign string escaped and capped;
* `server` — the stdlib HTTP server: routes, JSON, server-sent events, the strict CSP;
* ``static/`` — app.js (live feed), verify.js (CAR fetch, block-by-block verification
  and the video's sha256 in the browser with WebCrypto), style.css.

`open_explorer` wires them for one network (docs/architecture.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from framecast.client.explorer.indexer import Indexer
from framecast.client.explorer.server import (
    DEFAULT_MAX_BYTES,
    Explorer,
    ExplorerServer,
    serve_explorer,
    stop_explorer,
)
from framecast.client.explorer.store import Store
from framecast.shared.chain.bindings import bind
from framecast.shared.deployment import Deployment
from framecast.shared.ipfs.gateway import Gateway, serve_gateway
from framecast.shared.ipfs.local import LocalStore

__all__ = ["ExplorerApp", "default_db", "open_explorer"]


def default_db(home: Path, network: str) -> str:
    """The embedded index of a network: ``<home>/explorer/<network>.sqlite3``."""
    return str(home / "explorer" / f"{network}.sqlite3")


@dataclass
class ExplorerApp:
    """A running explorer: its index, indexer and web server."""

    store: Store
    indexer: Indexer
    server: ExplorerServer
    explorer: Explorer
    gateway: Gateway | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def job_url(self, job_id: int) -> str:
        return f"{self.url}/jobs/{job_id}"

    def close(self) -> None:
        stop_explorer(self.server)
        self.indexer.stop()
        if self.gateway is not None:
            self.gateway.close()
        self.store.close()


def open_explorer(
    w3: Web3,
    deployment: Deployment,
    *,
    db: str,
    host: str = "127.0.0.1",
    port: int = 0,
    gateways: list[str] | None = None,
    node_url: str | None = None,
    allow_loopback: bool = True,
    reindex: bool = False,
    confirmations: int = 0,
    poll_s: float = 1.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    catch_up: bool = True,
    serve_store: Path | None = None,
) -> ExplorerApp:
    """Open (or build) the index for ``deployment``, catch up once, then follow the chain
    on a thread and serve the pages on ``host:port``.

    ``serve_store``: an embedded blockstore (the devnet's ``<home>/blocks``) to serve as a
    trustless gateway beside the pages, listed after the providers' own gateways; the
    browser verifies what it serves like any other gateway's answer.
    """
    store = Store(db)
    gateway: Gateway | None = None
    try:
        if serve_store is not None:
            gateway = serve_gateway(LocalStore(serve_store), host)
            gateways = [*(gateways or []), gateway.url]
        store.prepare(chain_id=deployment.chain_id, market=deployment.market, reindex=reindex)
        credits, market = bind(w3, deployment, None)
        indexer = Indexer(
            store, w3, market, deployed_block=deployment.deployed_block,
            confirmations=confirmations,
        )  # fmt: skip
        explorer = Explorer(
            store=store, indexer=indexer, w3=w3, market=market, credits=credits,
            deployed_block=deployment.deployed_block, gateways=list(gateways or []),
            node_url=node_url.rstrip("/") if node_url else None, max_bytes=max_bytes,
            allow_loopback=allow_loopback,
        )  # fmt: skip
        if catch_up:
            indexer.run_once()
        server = serve_explorer(explorer, host, port)
    except BaseException:
        if gateway is not None:
            gateway.close()
        store.close()
        raise
    indexer.start(poll_s)
    return ExplorerApp(store, indexer, server, explorer, gateway)
