"""The EIP-712 `JobRequest` a client signs (docs/protocol.md §2).

The digest computed here must equal `JobMarket.hashRequest` on chain; a test checks it
against the deployed contract. Domain: name "framecast", version "1", chain id, market.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from framecast.shared.errors import SpecError
from framecast.shared.spec import GenerationSpec

DOMAIN_NAME = "framecast"
DOMAIN_VERSION = "1"
JOB_REQUEST_TYPE = (
    "JobRequest(address client,bytes32 modelId,bytes32 specHash,uint256 maxPrice,"
    "uint64 claimDeadline,uint64 deliveryWindow,uint8 replicas,bool perceptual,uint256 nonce)"
)
#: Most replicas (independent providers) a request may ask for; `JobMarket.MAX_REPLICAS`.
MAX_REPLICAS = 5
JOB_REQUEST_TYPEHASH = keccak(text=JOB_REQUEST_TYPE)
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
#: The EIP-712 domain's fields, as wallets (eth_signTypedData_v4) take them.
EIP712_DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
UINT64_MAX = 2**64 - 1
UINT96_MAX = 2**96 - 1


def _checksum(value: str) -> str:
    try:
        return to_checksum_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a 20-byte hex address") from None


Address = Annotated[str, AfterValidator(_checksum)]
Bytes32 = Annotated[bytes, Field(min_length=32, max_length=32)]


class Domain(BaseModel):
    """The EIP-712 domain that binds a signature to one chain and one market."""

    model_config = ConfigDict(frozen=True)

    chain_id: int = Field(gt=0, description="Chain id the market lives on.")
    market: Address = Field(description="JobMarket address (verifyingContract).")

    def typed_data_domain(self) -> dict[str, Any]:
        """The ``domain`` member of an EIP-712 message under this domain."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.market,
        }

    def separator(self) -> bytes:
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(text=DOMAIN_NAME),
                    keccak(text=DOMAIN_VERSION),
                    self.chain_id,
                    self.market,
                ],
            )
        )


class JobRequest(BaseModel):
    """The signed request; field names follow the Solidity struct in snake case."""

    model_config = ConfigDict(frozen=True)

    client: Address = Field(description="Who pays; must be the signer.")
    model_id: Bytes32 = Field(description="keccak256 of the catalog model id.")
    spec_hash: Bytes32 = Field(description="keccak256 of the canonical spec JSON.")
    max_price: int = Field(ge=0, le=UINT96_MAX, description="Most the client pays (wei of FCC).")
    claim_deadline: int = Field(gt=0, le=UINT64_MAX, description="Last claim timestamp.")
    delivery_window: int = Field(
        ge=60, le=7 * 24 * 3600, description="Seconds from claim to delivery (60 s … 7 days)."
    )
    replicas: int = Field(
        default=1,
        description=f"Providers that run the job independently (1 … {MAX_REPLICAS}); "
        "max_price is per replica, so the escrow is max_price × replicas.",
    )
    perceptual: bool = Field(
        default=False,
        description="Accept perceptual agreement of replicas attested by the arbiter, not only "
        "identical frames digests.",
    )
    nonce: int = Field(ge=0, lt=2**256, description="Single-use per client.")

    @field_validator("replicas")
    @classmethod
    def _replicas_in_range(cls, value: int) -> int:
        if not 1 <= value <= MAX_REPLICAS:
            raise ValueError(
                f"replicas must be between 1 and {MAX_REPLICAS} (got {value}): ask for 1 for a "
                f"single provider, or 2 … {MAX_REPLICAS} independent providers"
            )
        return value

    @property
    def escrow(self) -> int:
        """Credits the submission escrows: max_price for each replica."""
        return self.max_price * self.replicas

    @classmethod
    def for_spec(
        cls,
        spec: GenerationSpec,
        *,
        client: str,
        max_price: int,
        claim_deadline: int,
        delivery_window: int,
        nonce: int,
        replicas: int = 1,
        perceptual: bool = False,
    ) -> JobRequest:
        return cls(
            client=client,
            model_id=spec.model_id(),
            spec_hash=spec.spec_hash(),
            max_price=max_price,
            claim_deadline=claim_deadline,
            delivery_window=delivery_window,
            replicas=replicas,
            perceptual=perceptual,
            nonce=nonce,
        )

    @classmethod
    def from_event(cls, args: Mapping[str, Any]) -> JobRequest:
        """The signed request, rebuilt from a `JobSubmitted` event's arguments."""
        return cls(
            client=args["client"],
            model_id=bytes(args["modelId"]),
            spec_hash=bytes(args["specHash"]),
            max_price=int(args["maxPrice"]),
            claim_deadline=int(args["claimDeadline"]),
            delivery_window=int(args["deliveryWindow"]),
            replicas=int(args["replicas"]),
            perceptual=bool(args["perceptual"]),
            nonce=int(args["nonce"]),
        )

    def struct_hash(self) -> bytes:
        return keccak(
            abi_encode(
                [
                    "bytes32",
                    "address",
                    "bytes32",
                    "bytes32",
                    "uint256",
                    "uint64",
                    "uint64",
                    "uint8",
                    "bool",
                    "uint256",
                ],
                [
                    JOB_REQUEST_TYPEHASH,
                    self.client,
                    self.model_id,
                    self.spec_hash,
                    self.max_price,
                    self.claim_deadline,
                    self.delivery_window,
                    self.replicas,
                    self.perceptual,
                    self.nonce,
                ],
            )
        )

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest (`\\x19\\x01 ‖ domainSeparator ‖ structHash`)."""
        return keccak(b"\x19\x01" + domain.separator() + self.struct_hash())

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for `submitJob(JobRequest,…)`."""
        return (
            self.client,
            self.model_id,
            self.spec_hash,
            self.max_price,
            self.claim_deadline,
            self.delivery_window,
            self.replicas,
            self.perceptual,
            self.nonce,
        )

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 message, as wallets (eth_signTypedData_v4) take it."""
        return {
            "types": {
                "EIP712Domain": EIP712_DOMAIN_FIELDS,
                "JobRequest": [
                    {"name": "client", "type": "address"},
                    {"name": "modelId", "type": "bytes32"},
                    {"name": "specHash", "type": "bytes32"},
                    {"name": "maxPrice", "type": "uint256"},
                    {"name": "claimDeadline", "type": "uint64"},
                    {"name": "deliveryWindow", "type": "uint64"},
                    {"name": "replicas", "type": "uint8"},
                    {"name": "perceptual", "type": "bool"},
                    {"name": "nonce", "type": "uint256"},
                ],
            },
            "primaryType": "JobRequest",
            "domain": domain.typed_data_domain(),
            "message": {
                "client": self.client,
                "modelId": self.model_id,
                "specHash": self.spec_hash,
                "maxPrice": self.max_price,
                "claimDeadline": self.claim_deadline,
                "deliveryWindow": self.delivery_window,
                "replicas": self.replicas,
                "perceptual": self.perceptual,
                "nonce": self.nonce,
            },
        }


def sign_request(request: JobRequest, domain: Domain, private_key: bytes) -> bytes:
    """Sign with eth-account; refuses to sign for a key that is not the request's client."""
    account = Account.from_key(private_key)
    if account.address != request.client:
        raise SpecError(
            f"request client {request.client} is not the signing wallet {account.address}",
            field="client",
            fix="build the request with the wallet's own address",
        )
    signed = account.sign_message(encode_typed_data(full_message=request.typed_data(domain)))
    return bytes(signed.signature)


def recover_signer(request: JobRequest, domain: Domain, signature: bytes) -> str:
    """The address that signed `request` under `domain`."""
    message = encode_typed_data(full_message=request.typed_data(domain))
    return str(Account.recover_message(message, signature=signature))
