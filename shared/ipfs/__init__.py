"""Content addressing and storage: unixfs-v1-2025 CIDs, CAR, block stores, gateway.

The public entry points are re-exported here; adapters (local, kubo) are reached through
:func:`open_store` so that callers never pick one by hand.
"""

from framecast.shared.ipfs.cid import CID, parse_cid
from framecast.shared.ipfs.importer import (
    UNIXFS_V1_2025,
    ImportedNode,
    Importer,
    Profile,
    cid_of_path,
    import_path,
)

__all__ = [
    "CID",
    "UNIXFS_V1_2025",
    "ImportedNode",
    "Importer",
    "Profile",
    "cid_of_path",
    "import_path",
    "parse_cid",
]
