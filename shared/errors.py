"""The one error tree of framecast.

Every failure a user can meet is a ``FramecastError``. Messages are built from typed
fields and end with the fix. Adapters map their library's exceptions into this tree at
the boundary (httpx, web3, docker, sqlite); the CLI turns any of them into one red line.

::

    FramecastError
    ├── ConfigError                      bad or missing configuration / deployment file
    ├── WalletError                      keystore missing, unreadable, wrong password
    ├── SpecError                        a generation spec or request fails validation
    ├── ChainError                       anything between us and the chain
    │   ├── RpcUnavailable               the RPC endpoint does not answer
    │   ├── ChainMismatch                chain id / contract differ from what was expected
    │   ├── TransactionFailed            mined but reverted, or dropped, without a known error
    │   └── ContractRevert               a Solidity custom error, decoded
    │       └── (one subclass per custom error in the ABI, built at import time)
    ├── StorageError                     content store problems
    │   ├── ContentNotFound              a CID is not in the store / gateway
    │   ├── InvalidCid                   a malformed CID string
    │   └── StoreUnavailable             the store (kubo, gateway) does not answer
    ├── VerificationFailed               bytes do not match the hash the chain / CID promises
    ├── PipelineError                    model pipelines and runners
    │   ├── UnknownModel                 model id not in the catalog
    │   ├── WeightsInvalid               weights missing or sha256 mismatch
    │   ├── OutOfMemory                  the GPU (or container) ran out of memory
    │   └── RunnerFailed                 the runner crashed, timed out or was cancelled
    ├── RuntimeUnavailable               the container runtime (Docker daemon) is not there
    └── NodeError                        provider agent state problems
"""

from __future__ import annotations

from typing import Any, ClassVar


class FramecastError(Exception):
    """Root of every error framecast raises on purpose."""

    #: Short fix shown after the message; subclasses set a default.
    default_fix: ClassVar[str | None] = None

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


class WalletError(FramecastError):
    """Keystore missing, unreadable or locked with another password."""


class SpecError(FramecastError):
    """A generation spec or signed request is invalid; names the field and the bound."""

    def __init__(
        self, message: str, *, field: str | None = None, fix: str | None = None, **context: Any
    ) -> None:
        self.field = field
        super().__init__(message, fix=fix, field=field, **context)


class ChainError(FramecastError):
    """Anything between framecast and the chain."""


class RpcUnavailable(ChainError):
    """The RPC endpoint does not answer."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            f"RPC endpoint {url} does not answer ({reason})",
            fix="start the local chain with `framecast devnet up` or pass --rpc-url",
            url=url,
        )


class ChainMismatch(ChainError):
    """The chain id or contract address differs from what the caller expects."""


class TransactionFailed(ChainError):
    """A transaction reverted or was dropped without a decodable custom error."""


class ContractRevert(ChainError):
    """A Solidity custom error, decoded from its selector into a typed exception.

    Subclasses are generated from the contract ABIs (``framecast.shared.chain.reverts``);
    ``args`` holds the error's typed parameters by name.
    """

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


class StorageError(FramecastError):
    """Content store problems."""


class ContentNotFound(StorageError):
    """A CID is not in the store or on the gateway."""


class InvalidCid(StorageError):
    """A CID string that does not parse."""


class StoreUnavailable(StorageError):
    """The configured store (kubo RPC, gateway) does not answer."""


class VerificationFailed(FramecastError):
    """Bytes do not match the hash the chain or the CID promises."""


class PipelineError(FramecastError):
    """Model pipelines and runners."""


class UnknownModel(PipelineError):
    """The model id is not in the catalog."""


class WeightsInvalid(PipelineError):
    """Weights are missing or do not match the manifest."""


class OutOfMemory(PipelineError):
    """The GPU or the container ran out of memory."""


class RunnerFailed(PipelineError):
    """The runner crashed, timed out or was cancelled."""


class RuntimeUnavailable(FramecastError):
    """The container runtime (Docker daemon) is not reachable."""


class NodeError(FramecastError):
    """Provider agent state problems."""
