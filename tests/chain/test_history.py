"""The one log reader against a real range-capping RPC proxy in front of anvil."""

from __future__ import annotations

import pytest
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError

from framecast.shared.chain.bindings import Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.history import LogReader, is_range_error, provider_uris
from framecast.shared.errors import RpcError
from tests.chain.conftest import register
from tests.chain.rpc_proxy import REFUSALS, RangeLimitedProxy
from tests.conftest import Chain


def _spread_metadata_updates(chain: Chain, updates: int, gap: int) -> list[str]:
    """Register provider-1, then update its URI ``updates`` times, ``gap`` empty blocks
    apart, so the logs span far more blocks than the proxy allows."""
    register(chain)
    uris = []
    for n in range(updates):
        chain.w3.provider.make_request("anvil_mine", [hex(gap)])  # type: ignore[arg-type]
        uri = f"ipfs://meta-{n}"
        chain.market("provider-1").update_metadata(uri)
        uris.append(uri)
    return uris


@pytest.mark.parametrize("mapped", [False, True], ids=["raw-web3", "framecast-connect"])
@pytest.mark.parametrize("style", sorted(REFUSALS))
def test_reader_halves_a_refused_range_and_remembers_it(
    chain: Chain, style: str, mapped: bool
) -> None:
    uris = _spread_metadata_updates(chain, updates=4, gap=15)
    start, head = chain.deployment.deployed_block, chain.w3.eth.block_number
    market_events = chain.market().contract.events
    topics = [[market_events.ProviderRegistered.topic, market_events.ProviderMetadataUpdated.topic]]
    direct = LogReader(chain.w3).logs(
        chain.deployment.market, topics, from_block=start, to_block=head
    )
    assert len(direct) == 5
    with RangeLimitedProxy(str(chain.w3.provider.endpoint_uri), limit=8, style=style) as proxy:  # type: ignore[attr-defined]
        # The production connection maps refusals into the error tree: they must still be
        # recognised as range refusals.
        w3 = connect(proxy.url) if mapped else Web3(HTTPProvider(proxy.url))
        reader = LogReader(w3, max_range=5_000)
        through_proxy = reader.logs(
            chain.deployment.market, topics, from_block=start, to_block=head
        )
        assert [dict(e) for e in through_proxy] == [dict(e) for e in direct]
        assert proxy.refused, "the proxy refused the first, large range"
        assert max(proxy.served) <= 8 and reader.range <= 8
        # A new reader for the same RPC starts from the learned range: nothing refused.
        refused = len(proxy.refused)
        latest = provider_uris(
            Market(w3, chain.deployment.market), from_block=start, reader=LogReader(w3)
        )
        assert latest == {chain.account("provider-1").address: uris[-1]}
        assert len(proxy.refused) == refused


def test_other_rpc_errors_are_not_taken_for_a_range_limit(chain: Chain) -> None:
    # A malformed topic is an RPC error too, but not one that a smaller range cures: the
    # reader raises it at once instead of halving down to one block.
    with pytest.raises(RpcError) as raised:
        chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": 1, "topics": ["0x12"]})
    assert not is_range_error(raised.value)
    raw = Web3(HTTPProvider(chain.w3.provider.endpoint_uri))  # type: ignore[attr-defined]
    with pytest.raises(Web3RPCError) as raised_raw:
        raw.eth.get_logs({"fromBlock": 0, "toBlock": 1, "topics": ["0x12"]})
    assert not is_range_error(raised_raw.value)
    with pytest.raises(RpcError):
        LogReader(chain.w3).logs(chain.deployment.market, ["0x12"], from_block=0, to_block=1)


def test_a_networks_log_range_limit_caps_every_reader_of_its_endpoint(chain: Chain) -> None:
    """`connect_network` records the network's limit: readers start below it, never above."""
    from framecast.shared.chain.history import limit_log_range

    w3 = Web3(HTTPProvider(chain.w3.provider.endpoint_uri))  # type: ignore[attr-defined]
    # A fresh endpoint key: a path no other test's reader has learned anything for.
    w3.provider.endpoint_uri = f"{w3.provider.endpoint_uri}/?limit-test"  # type: ignore[attr-defined]
    assert LogReader(w3, max_range=5000).range == 5000
    limit_log_range(w3, 800)
    assert LogReader(w3, max_range=5000).range == 800
    limit_log_range(w3, 2000)  # a looser limit later never widens what is known
    assert LogReader(w3, max_range=5000).range == 800
    assert LogReader(w3, max_range=100).range == 100
