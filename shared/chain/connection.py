"""Connecting to an RPC endpoint, and the one place web3's failures become ours.

Every request a `Web3` from `connect` makes goes through `_MappingRequestManager`, which
turns whatever web3, requests, aiohttp, websockets or the socket layer raise into the
project's tree (`map_rpc_error`): a transport failure or an answer that is not JSON-RPC
is `RpcUnavailable`, a JSON-RPC error is `RpcError`, a revert is the decoded
`ContractRevert`. The error names the RPC URL, the JSON-RPC method and whatever the
caller put in `calling` (the contract function, the job id). Callers (bindings, sender,
node, commands) catch our types only.

Timeouts are short and retries bounded, so an outage shows within seconds instead of a
minute: each request waits at most ``timeout`` seconds and read-only methods are tried
``attempts`` times (web3's own retry, 0.1 s apart), so a silent partition surfaces after
about ``attempts × timeout`` seconds. Sends are retried by `TxSender`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    BadResponseFormat,
    ContractLogicError,
    OffchainLookup,
    PersistentConnectionError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.manager import RequestManager
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from framecast.shared.chain.reverts import revert_from
from framecast.shared.errors import (
    ChainError,
    ChainMismatch,
    FramecastError,
    RpcError,
    RpcUnavailable,
    TransactionFailed,
)

#: Seconds one JSON-RPC request may take. Public RPCs answer a getLogs of a few thousand
#: blocks well inside this; a partition shows as an outage after attempts × timeout.
DEFAULT_RPC_TIMEOUT_S = 4.0
#: Tries of a read-only request (web3's retry) before `RpcUnavailable` is raised.
DEFAULT_RPC_ATTEMPTS = 2
_RPC_BACKOFF_S = 0.1

#: The library errors web3's HTTP provider retries (a refused, dropped or 5xx request).
_TRANSPORT_RETRIED: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.HTTPError,
)

#: web3 uses these to steer its own polling (receipt waits, CCIP read): they must reach
#: it as they are. Nothing of ours asks for a receipt outside `TxSender._wait`.
_PASS_THROUGH: tuple[type[BaseException], ...] = (
    TransactionNotFound,
    TransactionIndexingInProgress,
    OffchainLookup,
)

#: JSON-RPC codes and texts by which public endpoints say "slow down".
_RATE_LIMIT_CODES = {429, -32005}
_RATE_LIMIT_TEXT = ("rate limit", "too many requests", "exceeded the quota")
_RATE_FIX = (
    "the RPC endpoint is rate-limiting this client: wait, or use an RPC URL with a "
    "higher limit (`framecast network list`)"
)

#: Libraries under web3's providers whose every exception means "no usable answer".
_TRANSPORT_MODULES = ("aiohttp", "websockets", "requests", "urllib3")

_calling: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "framecast_rpc_calling", default=None
)


@contextlib.contextmanager
def calling(what: str, **context: Any) -> Iterator[None]:
    """Name what the requests inside are for (``JobMarket.getJob``, ``job_id=5``): a
    mapped error carries it in its message and context. An outer name wins: the binding
    that says "JobMarket.claimJob for job 5" knows more than the sender inside it."""
    outer = _calling.get() or {}
    token = _calling.set({**context, **outer, "call": outer.get("call", what)})
    try:
        yield
    finally:
        _calling.reset(token)


def endpoint_of(w3: Web3) -> str:
    """The URL a Web3 talks to, for error messages."""
    return str(getattr(w3.provider, "endpoint_uri", None) or "the RPC endpoint")


@contextlib.contextmanager
def guarded(w3: Web3, what: str, **context: Any) -> Iterator[None]:
    """Name the requests inside (like `calling`) and map what web3 raises outside its
    request manager (decoding a call's output, waiting for a receipt, building a
    transaction) into the tree; our own errors pass unchanged."""
    with calling(what, **context):
        try:
            yield
        except FramecastError:
            raise
        except (Web3Exception, OSError) as exc:
            raise map_rpc_error(exc, url=endpoint_of(w3)) from exc
        except Exception as exc:
            if _foreign(exc, *_TRANSPORT_MODULES):
                raise map_rpc_error(exc, url=endpoint_of(w3)) from exc
            raise


def _method_name(method: Any) -> str:
    return method if isinstance(method, str) else getattr(method, "__name__", repr(method))


def _rpc_fields(exc: Web3RPCError) -> tuple[int | None, str]:
    response: Any = getattr(exc, "rpc_response", None) or {}
    text = str(getattr(exc, "message", None) or exc)
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return (code if isinstance(code, int) else None), str(error.get("message", text))
    return None, text


def _foreign(exc: BaseException, *modules: str) -> bool:
    """Whether `exc` comes from one of `modules` (checked by name: web3 imports aiohttp
    and websockets only for its async providers, and so need we not)."""
    return any(klass.__module__.split(".")[0] in modules for klass in type(exc).__mro__[:-1])


def map_rpc_error(
    exc: BaseException, *, url: str, method: str | None = None, **context: Any
) -> FramecastError:
    """The tree's error for a library exception raised while talking to ``url``.

    Order matters: revert before RPC error (web3's reverts are not Web3RPCErrors but
    may carry the same data), rate limits before other HTTP errors, requests' errors
    before OSError (they are OSErrors).
    """
    if isinstance(exc, FramecastError):
        return exc
    context = {**(_calling.get() or {}), **context}
    call = context.pop("call", None)
    asked = f"{method} ({call})" if call and method else (call or method)
    if isinstance(exc, ContractLogicError):
        return revert_from(exc, tx_hash=context.get("tx_hash"))
    if isinstance(exc, requests.HTTPError):
        response = getattr(exc, "response", None)
        status = response.status_code if response is not None else None
        if status == 429:
            reason = "HTTP 429, rate-limited"
            return RpcUnavailable(url, reason, method=asked, fix=_RATE_FIX, **context)
        return RpcUnavailable(url, f"HTTP {status}", method=asked, **context)
    if isinstance(exc, requests.Timeout | TimeoutError):
        return RpcUnavailable(url, "timed out", method=asked, **context)
    if isinstance(exc, requests.RequestException | OSError):
        reason = type(exc).__name__
        return RpcUnavailable(url, reason, method=asked, **context)
    if isinstance(exc, ProviderConnectionError | PersistentConnectionError) or _foreign(
        exc, *_TRANSPORT_MODULES
    ):
        return RpcUnavailable(url, type(exc).__name__, method=asked, **context)
    if isinstance(exc, Web3RPCError):
        code, message = _rpc_fields(exc)
        if code in _RATE_LIMIT_CODES or any(t in message.lower() for t in _RATE_LIMIT_TEXT):
            reason = f"rate-limited: {message}"
            return RpcUnavailable(url, reason, method=asked, fix=_RATE_FIX, **context)
        return RpcError(url, asked, message, code=code, **context)
    if isinstance(exc, BadResponseFormat | json.JSONDecodeError | UnicodeDecodeError):
        reason = "answered something that is not JSON-RPC"
        return RpcUnavailable(url, reason, method=asked, **context)
    if isinstance(exc, TimeExhausted):
        return TransactionFailed(f"{exc} (RPC {url})", **context)
    if isinstance(exc, BadFunctionCallOutput):
        return ChainMismatch(
            f"the contract answered {asked or 'a call'} with no data on {url}: no such "
            "contract at that address on this chain",
            **context,
        )
    kind = "web3" if isinstance(exc, Web3Exception) else type(exc).__name__
    return ChainError(f"{kind} failed on {asked or 'a request'} to {url}: {exc}", **context)


class OutageLog:
    """One log line when the RPC stops answering, one when it is back.

    A loop that polls the chain reports each round: `failed` after an `RpcUnavailable`,
    `answered` after a round the RPC answered. Between the two lines nothing is logged,
    however many rounds fail.
    """

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.time) -> None:
        self._log = log
        self._clock = clock
        #: Wall time the first failed round started (None while the RPC answers).
        self.since: float | None = None

    def failed(self, exc: RpcUnavailable, started: float) -> None:
        if self.since is not None:
            return
        self.since = started
        self._log.warning(
            "rpc %s unreachable since %s (%s), retrying",
            exc.url,
            time.strftime("%H:%M:%S", time.localtime(started)),
            exc.reason,
        )

    def answered(self) -> None:
        if self.since is None:
            return
        self._log.warning("rpc back after %.1f s", self._clock() - self.since)
        self.since = None


class _MappingRequestManager(RequestManager):
    """web3's request manager, raising the tree's errors instead of the libraries'."""

    def request_blocking(
        self,
        method: Any,
        params: Any,
        error_formatters: Callable[..., Any] | None = None,
        null_result_formatters: Callable[..., Any] | None = None,
    ) -> Any:
        try:
            return super().request_blocking(
                method, params, error_formatters, null_result_formatters
            )
        except _PASS_THROUGH:
            raise
        except (Web3Exception, OSError, ValueError) as exc:  # ValueError: undecodable JSON
            raise self._mapped(exc, method) from exc
        except Exception as exc:
            if _foreign(exc, *_TRANSPORT_MODULES):
                raise self._mapped(exc, method) from exc
            raise  # a bug of ours (TypeError, KeyError...): let its traceback show

    def _mapped(self, exc: BaseException, method: Any) -> FramecastError:
        url = str(getattr(self.provider, "endpoint_uri", None) or "the RPC endpoint")
        return map_rpc_error(exc, url=url, method=_method_name(method))


class ChainWeb3(Web3):
    """A `Web3` whose every request raises `FramecastError`s (see the module docstring)."""

    RequestManager = _MappingRequestManager


def connect(
    rpc_url: str,
    *,
    expected_chain_id: int | None = None,
    timeout: float = DEFAULT_RPC_TIMEOUT_S,
    attempts: int = DEFAULT_RPC_ATTEMPTS,
    session: requests.Session | None = None,
) -> Web3:
    """A Web3 on ``rpc_url`` whose chain id is checked against the deployment's
    (``session``: a requests session of the caller's, e.g. with auth headers)."""
    provider = HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        session=session,
        exception_retry_configuration=ExceptionRetryConfiguration(
            errors=_TRANSPORT_RETRIED, retries=max(1, attempts), backoff_factor=_RPC_BACKOFF_S
        ),
    )
    w3 = ChainWeb3(provider)
    with calling("connect"):
        chain_id = w3.eth.chain_id
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainMismatch(
            f"RPC {rpc_url} serves chain {chain_id}, but the deployment is on chain "
            f"{expected_chain_id}",
            fix="point the network's RPC URL at the deployment's chain "
            "(`framecast network list`), or use that chain's deployment",
            url=rpc_url,
        )
    return w3
