"""JobMarket is deployed linked to the ReplicatedJobs library (issue 11): the deployment
records the library, and the market's code calls exactly that address."""

from __future__ import annotations

import pytest

from framecast.shared.chain.artifacts import load_artifact
from framecast.shared.errors import ConfigError
from tests.conftest import Chain


def test_market_code_holds_the_deployed_library_address(chain: Chain) -> None:
    library = chain.deployment.libraries["ReplicatedJobs"]
    assert len(chain.w3.eth.get_code(library)) > 0
    market = load_artifact("JobMarket")
    assert market.libraries() == ["ReplicatedJobs"]
    code = bytes(chain.w3.eth.get_code(chain.deployment.market))
    spans = [s for refs in market.link_references.values() for s in refs["ReplicatedJobs"]]
    assert spans, "JobMarket's bytecode names where the library goes"
    # Runtime offsets differ from the creation code's; the address must appear once per call site.
    assert code.count(bytes.fromhex(library[2:])) == len(spans)


def test_linking_without_the_library_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="ReplicatedJobs"):
        load_artifact("JobMarket").linked_bytecode({})


def test_linking_fills_every_placeholder() -> None:
    address = "0x" + "ab" * 20
    market = load_artifact("JobMarket")
    linked = market.linked_bytecode({"ReplicatedJobs": address})
    assert "__$" not in linked
    assert len(linked) == len("0x" + market.bytecode.removeprefix("0x"))
    assert linked.count("ab" * 20) == len(
        market.link_references["src/ReplicatedJobs.sol"]["ReplicatedJobs"]
    )
    assert load_artifact("Credits").linked_bytecode({}) == "0x" + load_artifact(
        "Credits"
    ).bytecode.removeprefix("0x")
