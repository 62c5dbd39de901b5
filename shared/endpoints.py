"""Which URLs one party may take from another (docs/protocol.md §12).

A provider publishes its gateway and progress endpoints in its on-chain offer; a client,
an arbiter or another node then fetches from them. Anyone can write an offer, so a URL
read from the chain is untrusted input: it must be http(s), and it must not steer the
reader at its own machine (loopback, unspecified, link-local: a hostile offer could make
a client fetch "progress" or content from a service on its own host) unless the reader's
chain is itself on loopback, i.e. the whole market runs on this one machine (the devnet).

The node checks its own ``advertise_url`` with the same rules before it publishes it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from framecast.shared.errors import ConfigError

MAX_URL_LENGTH = 256


def _host_kind(host: str) -> str | None:
    """'loopback', 'unspecified' or 'link-local' for such hosts, else None."""
    name = host.strip("[]").lower()
    if name in {"localhost", "localhost.localdomain"} or name.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None  # a DNS name: only its resolution would tell, and we do not resolve here
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    return None


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine (loopback or unspecified address)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return _host_kind(host) in {"loopback", "unspecified"}


def check_remote_url(url: str, *, field: str, allow_loopback: bool) -> str:
    """The URL, normalised without a trailing slash, or ConfigError naming the field.

    ``allow_loopback`` is true only when the reader's own chain RPC is on loopback (one
    machine holds the whole market); unspecified and link-local hosts are never allowed.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(
            f"{field} is {len(url)} characters long (at most {MAX_URL_LENGTH})",
            fix=f"use a shorter {field}",
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigError(
            f"{field} {url!r} is not a valid URL ({exc})", fix="use http(s)://HOST:PORT"
        ) from exc
    if parts.scheme not in {"http", "https"} or not host:
        raise ConfigError(
            f"{field} {url!r} is not an http(s) URL with a host", fix="use http(s)://HOST:PORT"
        )
    if parts.username or parts.password:
        raise ConfigError(
            f"{field} {url!r} carries credentials", fix="publish the URL without user:password@"
        )
    kind = _host_kind(host)
    if kind in {"unspecified", "link-local"}:
        raise ConfigError(
            f"{field} {url!r} points at a {kind} address, which no other host can reach",
            fix="advertise an address other hosts reach (set advertise_url)",
        )
    if kind == "loopback" and not allow_loopback:
        raise ConfigError(
            f"{field} {url!r} points at loopback: from another host it would reach that "
            "host itself",
            fix="advertise an address other hosts reach (set advertise_url)",
        )
    return url.rstrip("/")
