"""Connecting to an RPC endpoint: one place that maps transport failures into our tree."""

from __future__ import annotations

import requests
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3Exception
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from framecast.shared.errors import ChainMismatch, RpcUnavailable

#: Transport failures worth retrying; anything else is a real answer.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.HTTPError,
)


def connect(rpc_url: str, *, expected_chain_id: int | None = None, timeout: float = 10.0) -> Web3:
    """A Web3 on ``rpc_url`` whose chain id is checked against the deployment's."""
    provider = HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        # web3 retries read-only methods itself; sends are retried by TxSender.
        exception_retry_configuration=ExceptionRetryConfiguration(
            errors=TRANSIENT_ERRORS, retries=4, backoff_factor=0.2
        ),
    )
    w3 = Web3(provider)
    try:
        chain_id = w3.eth.chain_id
    except (Web3Exception, OSError) as exc:  # requests' errors are OSErrors
        raise RpcUnavailable(rpc_url, type(exc).__name__) from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainMismatch(
            f"RPC {rpc_url} serves chain {chain_id}, but the deployment is on chain "
            f"{expected_chain_id}",
            fix="point --rpc-url at the deployment's chain, or use that chain's deployment file",
        )
    return w3
