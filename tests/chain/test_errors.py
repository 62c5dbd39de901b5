"""The error tree, and the chain adapters mapping every library exception into it.

Two kinds of test: an inventory (every exception class web3, requests, aiohttp,
websockets and the socket layer define maps to a `FramecastError`, also when raised from
inside a real HTTP transport), and real misbehaving endpoints on loopback (closed port,
one that never answers, garbage, HTTP 500 / 429, JSON-RPC errors, a wrong chain id)
called through the real bindings and sender."""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import urllib3.exceptions
import web3.exceptions
import websockets.exceptions
from web3.exceptions import Web3Exception

from framecast.shared import errors
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import Credits, Market
from framecast.shared.chain.connection import _PASS_THROUGH, connect, map_rpc_error
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import (
    ChainError,
    ChainMismatch,
    ContractRevert,
    FramecastError,
    RpcError,
    RpcUnavailable,
    TransactionFailed,
)
from tests.chain.rpc_server import ScriptedRpc, no_library_exception
from tests.conftest import Chain, free_port

URL = "http://127.0.0.1:1"
BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


# --------------------------------------------------------------------------- the tree
def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _tree_classes() -> list[type[FramecastError]]:
    return [
        obj
        for _name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, FramecastError) and obj.__module__ == errors.__name__
    ]


def test_every_error_class_has_a_fix() -> None:
    assert reverts.by_name  # the generated ContractRevert subclasses exist
    classes = [FramecastError, *_all_subclasses(FramecastError)]
    assert len(classes) > 40
    for cls in classes:
        assert isinstance(cls.default_fix, str) and len(cls.default_fix) > 10, cls
        if cls.__module__ == errors.__name__:
            assert "default_fix" in cls.__dict__, f"{cls.__name__} inherits its fix"


def _drawn_parents(doc: str) -> dict[str, str | None]:
    """name -> parent name, read from the ASCII tree (a name's column is its depth)."""
    drawing = doc.split("::", 1)[1]
    stack: list[tuple[int, str]] = []
    parents: dict[str, str | None] = {}
    for line in drawing.splitlines():
        match = re.search(r"[A-Z][A-Za-z]+", line)
        if match is None or not re.match(r"^[\s│├└─]*$", line[: match.start()]):
            continue
        column, name = match.start(), match.group()
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((column, name))
    return parents


def test_tree_has_15_to_26_classes_drawn_under_their_parents() -> None:
    classes = _tree_classes()
    # CONVENTIONS suggests 15–25; the HTTP servers' refusal (RequestRefused) is the 26th.
    assert 15 <= len(classes) <= 26, [c.__name__ for c in classes]
    drawn = _drawn_parents(errors.__doc__ or "")
    for cls in classes:
        assert cls.__name__ in drawn, f"{cls.__name__} is missing from the tree drawing"
        expected = None if cls is FramecastError else cls.__mro__[1].__name__
        assert drawn[cls.__name__] == expected, cls
    assert set(drawn) == {cls.__name__ for cls in classes}


def test_no_error_class_outside_the_tree(repo_root: Path) -> None:
    stray = []
    for package in ("client", "node", "shared", "docker"):
        for path in (repo_root / package).rglob("*.py"):
            if path == repo_root / "shared" / "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(base).endswith(("Exception", "Error")) for base in node.bases
                ):
                    stray.append(f"{path.relative_to(repo_root)}: {node.name}")
    assert stray == []
    assert issubclass(errors.JobNotFound, ChainError)
    assert issubclass(errors.JobStalled, ChainError)
    assert issubclass(errors.JobCanceled, errors.PipelineError)


# --------------------------------------------------------------------------- inventory
def _library_classes() -> list[type[BaseException]]:
    roots: list[type[BaseException]] = [
        Web3Exception,
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        aiohttp.ClientError,
        websockets.exceptions.WebSocketException,
        OSError,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ]
    found: dict[type[BaseException], None] = {}
    for root in roots:
        for cls in [root, *_all_subclasses(root)]:
            module = cls.__module__.split(".")[0]
            if module in {"web3", "requests", "aiohttp", "websockets", "builtins", "json",
                          "urllib3", "socket", "ssl"}:  # fmt: skip
                found[cls] = None
    return [cls for cls in found if not issubclass(cls, _PASS_THROUGH)]


def _instance(cls: type[BaseException]) -> BaseException:
    try:
        return cls("boom")
    except Exception:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, "boom")
        return exc


def test_every_library_exception_maps_into_the_tree() -> None:
    classes = _library_classes()
    names = {cls.__name__ for cls in classes}
    # The inventory really covers the libraries (not an empty loop).
    assert {"Web3RPCError", "ContractCustomError", "BadResponseFormat", "ConnectionError",
            "ReadTimeout", "ClientConnectorError", "ConnectionClosed",
            "ConnectionRefusedError", "TimeExhausted", "BlockNotFound"} <= names  # fmt: skip
    assert len(classes) > 100
    for cls in classes:
        mapped = map_rpc_error(_instance(cls), url=URL, method="eth_call")
        assert isinstance(mapped, FramecastError), cls
        if issubclass(
            cls,
            OSError
            | aiohttp.ClientError
            | websockets.exceptions.WebSocketException
            | urllib3.exceptions.HTTPError,
        ):
            assert isinstance(mapped, RpcUnavailable), cls
            assert URL in str(mapped) and "eth_call" in str(mapped)
        if issubclass(cls, web3.exceptions.ContractLogicError):
            assert isinstance(mapped, ContractRevert | TransactionFailed), cls
        if issubclass(cls, web3.exceptions.Web3RPCError):
            assert isinstance(mapped, RpcError | RpcUnavailable), cls


class _RaisingSession(requests.Session):
    """A real requests session that forwards the first ``ok`` posts, then raises."""

    def __init__(self, exc: BaseException, ok: int) -> None:
        super().__init__()
        self.exc, self.ok = exc, ok

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.ok > 0:
            self.ok -= 1
            return super().post(*args, **kwargs)
        raise self.exc


def test_transport_exceptions_raised_inside_the_http_stack_come_out_typed(
    chain: Chain, anvil_url: str
) -> None:
    transport = [c for c in _library_classes() if issubclass(c, OSError)]
    assert len(transport) > 30
    for cls in transport:
        w3 = connect(anvil_url, session=_RaisingSession(_instance(cls), ok=1), attempts=1)
        market = Market(w3, chain.deployment.market)
        raised = no_library_exception(lambda m=market: m.get_job(1))
        assert isinstance(raised, RpcUnavailable), (cls, raised)
        assert "JobMarket.getJob for job 1" in str(raised)
        sender = TxSender(w3, chain.account("alice"), retries=1, sleep=lambda _s: None)
        credits = Credits(w3, chain.deployment.credits, sender)
        raised = no_library_exception(lambda c=credits: c.transfer(BOB, 1))
        assert isinstance(raised, RpcUnavailable), (cls, raised)
        assert "Credits.transfer" in str(raised) and "after 1 retries" in str(raised)


# --------------------------------------------------------------------------- real endpoints
@pytest.fixture
def rpc(anvil_url: str) -> Iterator[ScriptedRpc]:
    server = ScriptedRpc(anvil_url)
    yield server
    server.close()


def test_closed_port_after_connecting(chain: Chain, rpc: ScriptedRpc) -> None:
    w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id)
    rpc.close()
    raised = no_library_exception(lambda: Market(w3, chain.deployment.market).get_job(3))
    assert isinstance(raised, RpcUnavailable)
    assert rpc.url in str(raised) and "getJob for job 3" in str(raised)
    assert raised.context["job_id"] == 3
    assert "framecast devnet up" in str(raised) and "framecast network list" in str(raised)


def test_endpoint_that_never_answers_times_out_quickly(chain: Chain, rpc: ScriptedRpc) -> None:
    w3 = connect(rpc.url, timeout=0.3, attempts=2)
    rpc.set("*", ("hang",))
    started = time.monotonic()
    raised = no_library_exception(lambda: Market(w3, chain.deployment.market).next_job_id())
    elapsed = time.monotonic() - started
    assert isinstance(raised, RpcUnavailable) and "timed out" in str(raised)
    assert elapsed < 2.0  # two tries of 0.3 s, not 5 × 10 s
    rpc.set("eth_chainId", ("hang",))
    raised = no_library_exception(lambda: connect(rpc.url, timeout=0.3))
    assert isinstance(raised, RpcUnavailable) and "connect" in str(raised)


@pytest.mark.parametrize(
    ("how", "expected", "text"),
    [
        (("garbage",), RpcUnavailable, "not JSON-RPC"),
        (("status", 500), RpcUnavailable, "HTTP 500"),
        (("status", 429), RpcUnavailable, "rate-limiting"),
        (("rpc_error", -32005, "daily request limit reached"), RpcUnavailable, "rate-limit"),
        (("rpc_error", -32000, "header not found"), RpcError, "header not found"),
    ],
)
def test_misbehaving_endpoint_gives_a_typed_error(
    chain: Chain, rpc: ScriptedRpc, how: tuple[Any, ...], expected: type, text: str
) -> None:
    w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id)
    rpc.set("*", how)
    market = Market(w3, chain.deployment.market)
    for action in (
        lambda: market.get_job(1),
        market.params,
        lambda: market.contract.events.JobSubmitted.get_logs(from_block=0, to_block=1),
        lambda: w3.eth.block_number,
    ):
        raised = no_library_exception(action)
        assert isinstance(raised, expected), raised
        assert text in str(raised) and rpc.url in str(raised)
    sender = TxSender(w3, chain.account("alice"), retries=1, sleep=lambda _s: None)
    raised = no_library_exception(
        lambda: Credits(w3, chain.deployment.credits, sender).transfer(BOB, 1)
    )
    assert isinstance(raised, expected), raised


def test_json_rpc_error_keeps_the_endpoints_code_and_message(
    chain: Chain, rpc: ScriptedRpc
) -> None:
    w3 = connect(rpc.url)
    rpc.set("eth_getLogs", ("rpc_error", -32602, "query exceeds max block range 1000"))
    market = Market(w3, chain.deployment.market)
    raised = no_library_exception(
        lambda: market.contract.events.JobSubmitted.get_logs(from_block=0, to_block=5000)
    )
    assert isinstance(raised, RpcError)
    assert raised.code == -32602 and "max block range" in raised.rpc_message
    assert raised.method == "eth_getLogs"


def test_wrong_chain_id_and_missing_contract(chain: Chain, rpc: ScriptedRpc) -> None:
    raised = no_library_exception(lambda: connect(rpc.url, expected_chain_id=8453))
    assert isinstance(raised, ChainMismatch) and "31337" in str(raised)
    w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id)
    nowhere = "0x" + "ab" * 20
    raised = no_library_exception(lambda: Market(w3, nowhere).get_job(1))
    assert isinstance(raised, ChainMismatch) and "no such contract" in str(raised)


def test_revert_of_a_read_without_wallet_is_decoded(chain: Chain) -> None:
    market = Market(chain.w3, chain.deployment.market)
    raised = no_library_exception(lambda: market.withdraw_fees(BOB, 1))
    assert isinstance(raised, errors.ConfigError)  # no wallet: refused before any request
    credits = Credits(chain.w3, chain.deployment.credits, chain.sender("alice"))
    raised = no_library_exception(lambda: credits.transfer(BOB, 10**40))
    assert isinstance(raised, ContractRevert), raised


def test_unreachable_port_is_refused_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    raised = no_library_exception(lambda: connect(url))
    assert isinstance(raised, RpcUnavailable) and url in str(raised)
    assert time.monotonic() - started < 2.0
    assert not any(isinstance(raised, cls) for cls in (OSError, Web3Exception))
    assert builtins.isinstance(raised, FramecastError)
