"""CIDs, multihashes and the multibase encodings IPFS uses (base32 for v1, base58btc for v0).

Only what framecast speaks: CIDv0 and CIDv1, sha2-256 multihashes, the raw and dag-pb
codecs (others parse and print, but cannot be verified).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final

from framecast.shared.errors import InvalidCid, VerificationFailed

RAW: Final = 0x55
DAG_PB: Final = 0x70
SHA2_256: Final = 0x12
SHA2_256_LENGTH: Final = 32

_B58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX: Final = {c: i for i, c in enumerate(_B58_ALPHABET)}
# A varint longer than this cannot be a codec or length we accept (2**63 fits in 9 bytes).
_MAX_VARINT_BYTES: Final = 9
_FIX: Final = "pass a CIDv1 in base32 (bafy…/bafk…) or a CIDv0 (Qm…)"


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats and protobuf write it."""
    if value < 0:
        raise ValueError(f"varint cannot encode a negative number: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Read one unsigned varint at ``offset``; returns (value, offset after it)."""
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES + 1):
        if offset + i >= len(data):
            raise ValueError("truncated varint")
        byte = data[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if i > 0 and byte == 0:
                # Multiformats forbids non-minimal varints: two spellings of one CID.
                raise ValueError("non-minimal varint")
            return value, offset + i + 1
        shift += 7
    raise ValueError("varint too long")


def b58encode(data: bytes) -> str:
    """Bitcoin base58 (the alphabet of CIDv0)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    chars = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(chars))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + _B58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


_B36_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


def b36decode(text: str) -> bytes:
    """Multibase ``k`` (base36 lower case, without the prefix), as IPNS keys and subdomain
    gateways print CIDv1; leading ``0`` characters stand for zero bytes."""
    number = 0
    for char in text:
        value = _B36_ALPHABET.find(char)
        if value < 0:
            raise ValueError(f"{char!r} is not a lower-case base36 character")
        number = number * 36 + value
    zeros = len(text) - len(text.lstrip("0"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def b32encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase prefix ``b``, without the prefix)."""
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def b32decode(text: str) -> bytes:
    """Inverse of :func:`b32encode`; raises ValueError on bad characters or length."""
    if text != text.lower():
        raise ValueError("multibase 'b' is lower-case base32")
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        decoded = base64.b32decode(padded)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"not base32: {exc}") from None
    if b32encode(decoded) != text:
        # Trailing bits that are not zero: another string for the same bytes.
        raise ValueError("non-canonical base32")
    return decoded


@dataclass(frozen=True, slots=True)
class CID:
    """A content identifier: version, content codec and multihash (code + digest)."""

    version: int
    codec: int
    hash_code: int
    digest: bytes

    @classmethod
    def from_block(cls, data: bytes | memoryview, codec: int = RAW) -> CID:
        """The CIDv1 (sha2-256) of a block's bytes."""
        return cls(1, codec, SHA2_256, hashlib.sha256(data).digest())

    @classmethod
    def from_digest(cls, digest: bytes, codec: int = RAW) -> CID:
        """The CIDv1 for a sha2-256 digest already computed."""
        return cls(1, codec, SHA2_256, digest)

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID string (CIDv0 ``Qm…``, CIDv1 in base32 ``b…``, base36 ``k…`` or
        base58btc ``z…``)."""
        if not isinstance(text, str) or not text:
            raise InvalidCid(f"empty CID {text!r}", fix=_FIX, cid=text)
        try:
            if len(text) == 46 and text.startswith("Qm"):
                return cls.from_bytes(b58decode(text), v0=True)
            if text[0] == "b":
                return cls.from_bytes(b32decode(text[1:]))
            if text[0] == "z":
                return cls.from_bytes(b58decode(text[1:]))
            if text[0] == "k":
                return cls.from_bytes(b36decode(text[1:]))
        except ValueError as exc:
            raise InvalidCid(f"malformed CID {text!r} ({exc})", fix=_FIX, cid=text) from None
        raise InvalidCid(
            f"malformed CID {text!r} (unsupported multibase prefix {text[0]!r})", fix=_FIX, cid=text
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, v0: bool = False) -> CID:
        """Decode a binary CID; raises ValueError (callers wrap it with context)."""
        cid, end = cls.read(data, 0, v0=v0)
        if end != len(data):
            raise ValueError(f"{len(data) - end} trailing bytes after the CID")
        return cid

    @classmethod
    def read(cls, data: bytes | memoryview, offset: int, *, v0: bool = False) -> tuple[CID, int]:
        """Read a binary CID at ``offset`` (CAR sections hold them back to back)."""
        if v0 or (len(data) > offset + 1 and data[offset] == SHA2_256 and data[offset + 1] == 32):
            digest = bytes(data[offset + 2 : offset + 34])
            if data[offset] != SHA2_256 or data[offset + 1] != 32 or len(digest) != 32:
                raise ValueError("a CIDv0 is a 34-byte sha2-256 multihash")
            return cls(0, DAG_PB, SHA2_256, digest), offset + 34
        version, pos = decode_varint(data, offset)
        if version != 1:
            raise ValueError(f"unsupported CID version {version}")
        codec, pos = decode_varint(data, pos)
        hash_code, pos = decode_varint(data, pos)
        length, pos = decode_varint(data, pos)
        digest = bytes(data[pos : pos + length])
        if len(digest) != length:
            raise ValueError("truncated multihash digest")
        if hash_code == SHA2_256 and length != SHA2_256_LENGTH:
            raise ValueError(f"sha2-256 digest of {length} bytes")
        return cls(1, codec, hash_code, digest), pos + length

    @property
    def multihash(self) -> bytes:
        return encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest

    def __bytes__(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + b32encode(bytes(self))

    def __repr__(self) -> str:
        return f"CID({self})"

    def to_v1(self) -> CID:
        """The same content named as CIDv1 (what gateways and this package print)."""
        return CID(1, self.codec, self.hash_code, self.digest)

    def verify(self, data: bytes | memoryview) -> None:
        """Raise VerificationFailed unless ``data`` hashes to this CID."""
        if self.hash_code != SHA2_256:
            raise VerificationFailed(
                f"cannot verify block {self}: multihash 0x{self.hash_code:x} is not sha2-256",
                fix="fetch content addressed with sha2-256 (the unixfs-v1-2025 profile)",
                cid=str(self),
            )
        if hashlib.sha256(data).digest() != self.digest:
            raise VerificationFailed(
                f"block {self} does not match its CID (the source sent other bytes)",
                fix="retry from another gateway or store; this one serves corrupt or forged data",
                cid=str(self),
            )


def parse_cid(value: str | CID) -> CID:
    """Accept a CID or its string form (boundary helper for public functions)."""
    return value if isinstance(value, CID) else CID.parse(value)
