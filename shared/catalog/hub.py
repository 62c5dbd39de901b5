"""The one mapping of Hugging Face hub failures into the error tree.

Both hub adapters (the node's weights pull, `framecast.node.models.hub_download`, and the
maintainer's pin, `framecast.client.catalog.HubClient`) use it, so a revision that does not
exist or a hub that does not answer reads the same everywhere. huggingface_hub (and the
HTTP library under it, httpx or httpx2 by version) is imported only when a failure is mapped.
"""

from __future__ import annotations

from framecast.shared.errors import ConfigError, FramecastError, StoreUnavailable


def transport_errors() -> tuple[type[BaseException], ...]:
    """The exception classes a hub call raises for HTTP and network failures."""
    from huggingface_hub.errors import HfHubHTTPError

    found: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module in ("httpx", "httpx2"):
        try:
            found.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def map_hub_error(exc: BaseException, *, repo: str, revision: str, endpoint: str) -> FramecastError:
    """`exc` from a hub call about `repo`@`revision` as one of ours, with the fix."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, RevisionNotFoundError):
        return ConfigError(
            f"revision {revision!r} does not exist in {repo} on {endpoint}",
            fix="pass a branch, tag or commit the repo has (--revision), e.g. main",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ConfigError(
            f"repo {repo} does not exist on {endpoint} (or is private / gated)",
            fix="fix the entry's repo in models.toml, or log in (HF_TOKEN) for a gated one",
        )
    return StoreUnavailable(
        f"the hub at {endpoint} failed for {repo}@{revision[:40]}: {exc}",
        fix="check the network (and HF_ENDPOINT) and retry; finished downloads are kept",
    )


__all__ = ["map_hub_error", "transport_errors"]
