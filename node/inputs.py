"""Job inputs (init image, source video, control frames) into the node's store, verified.

Inputs reach a provider in two ways, both before it claims (a provider must never stake
collateral on content it does not hold): the client uploads a CAR of each input to the
node (`framecast.node.http`, ``POST /framecast/v1/inputs``), or the node fetches it as a
CAR from the trustless gateways in its config. Either way every block is hashed against
its CID, the DAG must be whole, and only then are the blocks written and the root pinned
(pinned content is never collected), so a restarted node still holds what it claimed for.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from framecast.shared.errors import FramecastError, StorageError, VerificationFailed
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.dag import is_directory, walk_blocks
from framecast.shared.ipfs.retrieval import gateway_car
from framecast.shared.ipfs.store import ContentStore
from framecast.shared.spec import GenerationSpec


def holds_dag(store: ContentStore, root: CID) -> bool:
    """Every block under ``root`` is in the store."""
    try:
        for _ in walk_blocks(store.get_block, root):
            pass
    except FramecastError:
        return False
    return True


def import_dag(
    store: ContentStore, root: CID, blocks: Iterable[tuple[CID, bytes]], *, max_bytes: int
) -> int:
    """Verify ``blocks``, check they (with what the store holds) make the whole DAG under
    ``root``, then write them and pin ``root``; returns the number of blocks written.

    Raises VerificationFailed for a block that does not match its CID or an incomplete
    DAG, StorageError past ``max_bytes``; nothing is written then."""
    held: dict[CID, bytes] = {}
    total = 0
    for cid, block in blocks:
        cid.verify(block)
        total += len(block)
        if total > max_bytes:
            raise StorageError(
                f"input {root} is larger than {max_bytes} bytes",
                fix="raise input_max_bytes in the node config to take bigger inputs",
                cid=str(root),
            )
        held[cid] = block

    def get_block(cid: CID) -> bytes:
        return held[cid] if cid in held else store.get_block(cid)

    try:
        needed = [cid for cid, _ in walk_blocks(get_block, root)]
    except FramecastError as exc:
        raise VerificationFailed(
            f"the blocks sent for {root} are not its whole DAG ({exc})",
            fix="send a CAR of the whole input (dag-scope=all)",
            cid=str(root),
        ) from None
    written = 0
    for cid in needed:
        if cid in held:
            store.put_block(cid, held[cid])
            written += 1
    store.pin(root)
    return written


def fetch_from_gateway(
    store: ContentStore, root: CID, gateway: str, *, timeout_s: float, max_bytes: int
) -> int:
    """Fetch ``root`` as a CAR from a trustless gateway into the store (see `import_dag`),
    over the same gateway stream the retrieval path reads (`gateway_car`).

    Raises a FramecastError naming the gateway when it fails or lies."""
    with (
        httpx.Client(timeout=timeout_s) as http,
        gateway_car(http, gateway, root, timeout=timeout_s) as blocks,
    ):
        return import_dag(store, root, blocks, max_bytes=max_bytes)


def acquire(
    store: ContentStore, cids: list[str], gateways: list[str], *, timeout_s: float,
    max_bytes: int,
) -> dict[str, str]:  # fmt: skip
    """Make every input present; returns {cid: why it is missing} for those still absent."""
    missing: dict[str, str] = {}
    for text in cids:
        root = CID.parse(text)
        if store.has(root) and holds_dag(store, root):
            continue
        reasons = []
        for gateway in gateways:
            try:
                fetch_from_gateway(store, root, gateway, timeout_s=timeout_s, max_bytes=max_bytes)
                break
            except FramecastError as exc:
                reasons.append(exc.message)
        else:
            missing[text] = "; ".join(reasons) or "not uploaded and no public_gateways configured"
    return missing


def input_shape_problem(store: ContentStore, spec: GenerationSpec) -> str | None:
    """Why held inputs cannot serve ``spec`` (a dataset that is not a directory, a LoRA or
    an image that is one), or None; checked before claiming, so a wrong CID costs nothing."""
    wanted: list[tuple[str, str, bool]] = []
    if spec.inputs.dataset is not None:
        wanted.append(("inputs.dataset", spec.inputs.dataset, True))
    for name in ("image", "video", "control"):
        value = getattr(spec.inputs, name)
        if value is not None:
            wanted.append((f"inputs.{name}", value, False))
    if spec.lora_style is not None:
        wanted.append(("style.lora", spec.lora_style.lora, False))
    for field, text, directory in wanted:
        try:
            found = is_directory(store.get_block, CID.parse(text))
        except FramecastError as exc:
            return f"{field} {text} cannot be read: {exc.message}"
        if found != directory:
            kind = "a directory (`framecast dataset pack`)" if directory else "a file"
            return f"{field} {text} is not {kind}"
    return None
