"""The one error tree of framecast.

Every failure a user can meet is a ``FramecastError``. Messages are built from typed
fields and end with the fix: every class has a ``default_fix``, and a raise site may give
a sharper one. Adapters map their library's exceptions into this tree where they arise
(web3 / requests in ``shared.chain.connection``, httpx, docker, sqlite); the CLI and the
node catch these types only, and the CLI turns any of them into one red line.

::

    FramecastError
    ├── ConfigError                      bad or missing configuration / deployment file
    ├── WalletError                      keystore missing, unreadable, wrong password
    ├── SpecError                        a generation spec or request fails validation
    ├── ChainError                       anything between us and the chain
    │   ├── RpcUnavailable               the RPC endpoint does not answer (or not JSON-RPC)
    │   ├── RpcError                     the RPC answered a JSON-RPC error to a request
    │   ├── ChainMismatch                chain id / contract differ from what was expected
    │   ├── TransactionFailed            mined but reverted, or dropped, without a known error
    │   ├── ContractRevert               a Solidity custom error, decoded
    │   │   └── (one subclass per custom error in the ABI, built at import time)
    │   ├── JobNotFound                  no such job id on this market
    │   └── JobStalled                   a deadline passed with nobody acting
    ├── StorageError                     content store problems
    │   ├── ContentNotFound              a CID is not in the store / gateway
    │   ├── InvalidCid                   a malformed CID string
    │   └── StoreUnavailable             the store (kubo, gateway) does not answer
    ├── VerificationFailed               bytes do not match the hash the chain / CID promises
    ├── PipelineError                    model pipelines and runners
    │   ├── UnknownModel                 model id not in the catalog
    │   ├── WeightsInvalid               weights missing or sha256 mismatch
    │   ├── OutOfMemory                  the GPU (or container) ran out of memory
    │   ├── RunnerFailed                 the runner crashed, timed out or was cancelled
    │   └── JobCanceled                  the node asked the runner to stop a job
    ├── RuntimeUnavailable               the runtime (Docker daemon, Ray cluster) is not there
    ├── RequestRefused                   our HTTP server (gateway, input upload) refuses a request
    └── NodeError                        provider agent state problems
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class FramecastError(Exception):
    """Root of every error framecast raises on purpose."""

    #: Short fix shown after the message; every class sets one, a raise site may sharpen it.
    default_fix: ClassVar[str] = "run the command again with --debug and report the traceback"

    def __init__(self, message: str, *, fix: str | None = None, **context: Any) -> None:
        self.message = message
        self.fix = fix if fix is not None else self.default_fix
        self.context = context
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} — {self.fix}"
        return self.message


class ConfigError(FramecastError):
    """Configuration or deployment file is missing or wrong."""

    default_fix = "check the file or option named above (`framecast COMMAND --help`)"


class WalletError(FramecastError):
    """Keystore missing, unreadable or locked with another password."""

    default_fix = (
        "list wallets with `framecast wallet list` and check the password (--password-file)"
    )


class SpecError(FramecastError):
    """A generation spec or signed request is invalid; names the field and the bound."""

    default_fix = "change the field named above to a value inside its bounds"

    def __init__(
        self, message: str, *, field: str | None = None, fix: str | None = None, **context: Any
    ) -> None:
        self.field = field
        super().__init__(message, fix=fix, field=field, **context)


class ChainError(FramecastError):
    """Anything between framecast and the chain."""

    default_fix = "check the network's RPC URL and deployment (`framecast network list`)"


class RpcUnavailable(ChainError):
    """The RPC endpoint does not answer, or answers something that is not JSON-RPC.

    Transient by nature: the sender and the node retry it; a command shows it once its
    bounded retries are spent.
    """

    default_fix = (
        "check the RPC URL of the network (`framecast network list`) or start the local "
        "chain with `framecast devnet up`"
    )

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        method: str | None = None,
        fix: str | None = None,
        **context: Any,
    ) -> None:
        self.url = url
        self.reason = reason
        self.method = method
        asked = f" to {method}" if method else ""
        super().__init__(
            f"RPC endpoint {url} gave no usable answer{asked}: {reason}",
            fix=fix,
            url=url,
            method=method,
            **context,
        )


class RpcError(ChainError):
    """The RPC answered a request with a JSON-RPC error (other than a contract revert).

    ``code`` and ``rpc_message`` are the endpoint's own, for callers that react to a
    specific answer (a log range too large, a method the endpoint lacks).
    """

    default_fix = "the endpoint refused the request: use an RPC URL that serves it"

    def __init__(
        self,
        url: str,
        method: str | None,
        rpc_message: str,
        *,
        code: int | None = None,
        fix: str | None = None,
        **context: Any,
    ) -> None:
        self.url = url
        self.method = method
        self.code = code
        self.rpc_message = rpc_message
        shown = f" {code}" if code is not None else ""
        super().__init__(
            f"RPC endpoint {url} answered {method or 'a request'} with error{shown}: {rpc_message}",
            fix=fix,
            url=url,
            method=method,
            code=code,
            **context,
        )


class ChainMismatch(ChainError):
    """The chain id or contract address differs from what the caller expects."""

    default_fix = "point the network at the chain its deployment is on (`framecast network list`)"


class TransactionFailed(ChainError):
    """A transaction reverted or was dropped without a decodable custom error."""

    default_fix = "check the job or account with `framecast status JOB`, then retry"


class ContractRevert(ChainError):
    """A Solidity custom error, decoded from its selector into a typed exception.

    Subclasses are generated from the contract ABIs (``framecast.shared.chain.reverts``);
    ``args`` holds the error's typed parameters by name.
    """

    default_fix = "the contract refused the call: check the job with `framecast status JOB`"
    solidity_name: ClassVar[str] = ""
    selector: ClassVar[bytes] = b""

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        args: dict[str, Any] | None = None,
        tx_hash: str | None = None,
    ) -> None:
        self.error_args: dict[str, Any] = dict(args or {})
        self.tx_hash = tx_hash
        super().__init__(message, fix=fix, tx_hash=tx_hash, **self.error_args)


class JobNotFound(ChainError):
    """No `JobSubmitted` for this id on this market."""

    default_fix = "check the job id and the network (`framecast jobs --mine` lists yours)"


class JobStalled(ChainError):
    """A deadline passed with nobody acting: the client can take its money back."""

    default_fix = "take the escrow back with `framecast reclaim JOB`"


class StorageError(FramecastError):
    """Content store problems."""

    default_fix = "check the store settings (`store`, `gateway_url`) in the config"


class ContentNotFound(StorageError):
    """A CID is not in the store or on the gateway."""

    default_fix = "check the CID, or point --gateway at a gateway that has it"


class InvalidCid(StorageError):
    """A CID string that does not parse."""

    default_fix = "pass a CIDv1 string as printed by `framecast cid`"


class StoreUnavailable(StorageError):
    """The configured store (kubo RPC, gateway) does not answer."""

    default_fix = "start the store (kubo) or check its URL in the config"


class VerificationFailed(FramecastError):
    """Bytes do not match the hash the chain or the CID promises."""

    default_fix = "do not use the result; dispute it with `framecast dispute JOB`"


class PipelineError(FramecastError):
    """Model pipelines and runners."""

    default_fix = "check the runner log named above"


class UnknownModel(PipelineError):
    """The model id is not in the catalog."""

    default_fix = "pick a model id from the catalog (`framecast submit --help`)"


class WeightsInvalid(PipelineError):
    """Weights are missing or do not match the manifest."""

    default_fix = "pull and verify the weights with `framecast node models`"


class OutOfMemory(PipelineError):
    """The GPU or the container ran out of memory."""

    default_fix = "lower the resolution or frame count, or serve the model on a larger GPU"


class RunnerFailed(PipelineError):
    """The runner crashed, timed out or was cancelled."""

    default_fix = "see the runner log in the node's state directory"


class JobCanceled(PipelineError):
    """The node asked the runner to stop a job (raised from a step callback)."""

    default_fix = "nothing to do: the node cancelled the job on purpose"


class RuntimeUnavailable(FramecastError):
    """The runtime (Docker daemon, Ray cluster) is not reachable."""

    default_fix = 'start Docker, or run the node with `runtime = "process"`'


class RequestRefused(FramecastError):
    """A request one of our HTTP servers (the gateway, the node's input upload) refuses.

    ``status`` is the HTTP answer it becomes; the message is the body the caller reads.
    """

    default_fix = "see the message for what the server accepts"

    def __init__(self, status: int, message: str, *, fix: str | None = None) -> None:
        self.status = HTTPStatus(status)
        super().__init__(message, fix=fix, status=int(status))


class NodeError(FramecastError):
    """Provider agent state problems."""

    default_fix = "check the node's state directory and config (`framecast node --help`)"
