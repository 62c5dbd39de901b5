"""The node's HTTP and advertise settings (issue 12.1): one bind address, one URL others
reach, and the legacy metrics_host/metrics_port still working."""

from __future__ import annotations

import pytest

from framecast.node.commands.setup import offer_uri
from framecast.node.config import NodeSettings
from framecast.shared.errors import ConfigError
from framecast.shared.provider_metadata import parse_offer

LOCAL_RPC = "http://127.0.0.1:8545"
REMOTE_RPC = "https://rpc.example.org"


def test_http_bind_and_its_legacy_spelling() -> None:
    assert NodeSettings().http_address() == ("127.0.0.1", 9464)
    assert NodeSettings(metrics_port=0).http_address() is None  # the old "off"
    assert NodeSettings(metrics_host="0.0.0.0", metrics_port=9000).http_address() == (
        "0.0.0.0",
        9000,
    )
    # http_bind wins over the legacy fields (a config from `node init` names both).
    assert NodeSettings(http_bind="10.1.2.3:80", metrics_port=9000).http_address() == (
        "10.1.2.3",
        80,
    )
    assert NodeSettings(http_bind="[::1]:9464").http_address() == ("::1", 9464)
    with pytest.raises(ConfigError, match=r"http_bind.*not HOST:PORT"):
        NodeSettings(http_bind="9464").http_address()


def test_offer_carries_the_advertised_url() -> None:
    settings = NodeSettings(http_bind="0.0.0.0:9464", advertise_url="http://198.51.100.4:9464/")
    offer = parse_offer(offer_uri(settings, REMOTE_RPC))
    assert offer is not None
    assert offer.endpoint == offer.gateway == "http://198.51.100.4:9464"
    # On the single-machine devnet the bind address itself is advertised.
    local = parse_offer(offer_uri(NodeSettings(http_bind="127.0.0.1:9500"), LOCAL_RPC))
    assert local is not None and local.endpoint == "http://127.0.0.1:9500"
    assert parse_offer(offer_uri(NodeSettings(metrics_port=0), LOCAL_RPC)).endpoint is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "rpc", "said"),
    [
        ({"advertise_url": "http://0.0.0.0:9464"}, LOCAL_RPC, "unspecified address"),
        ({"http_bind": "0.0.0.0:9464"}, LOCAL_RPC, "unspecified address"),
        ({"http_bind": "127.0.0.1:9464"}, REMOTE_RPC, "points at loopback"),
        ({"advertise_url": "http://localhost:9464"}, REMOTE_RPC, "points at loopback"),
        ({"http_bind": "127.0.0.1:0"}, LOCAL_RPC, "port 0"),
    ],
)
def test_unreachable_advertise_urls_are_refused(
    fields: dict[str, str], rpc: str, said: str
) -> None:
    with pytest.raises(ConfigError, match=said) as caught:
        offer_uri(NodeSettings(**fields), rpc)  # type: ignore[arg-type]
    assert "advertise_url" in str(caught.value)
