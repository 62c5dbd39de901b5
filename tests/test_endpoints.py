"""URLs read from another party's offer: http(s) only, never steering a reader at itself."""

from __future__ import annotations

import pytest

from framecast.shared.endpoints import check_remote_url, is_loopback_url
from framecast.shared.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    ["http://10.77.0.2:9464", "https://gw.example.org", "http://[2001:db8::1]:8080/"],
)
def test_remote_urls_pass_and_lose_trailing_slash(url: str) -> None:
    assert check_remote_url(url, field="gateway", allow_loopback=False) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://10.0.0.1/x", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("http://0.0.0.0:9464", "unspecified"),
        ("http://[::]:9464", "unspecified"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[fe80::1]:80", "link-local"),
        ("http://127.0.0.1:9464", "loopback"),
        ("http://localhost:9464", "loopback"),
        ("http://[::ffff:127.0.0.1]:1", "loopback"),
        ("http://user:pw@10.0.0.1", "credentials"),
        ("http://10.0.0.1:notaport", "not a valid URL"),
        ("http://10.0.0.1/" + "a" * 300, "characters long"),
    ],
)
def test_bad_urls_are_refused_with_the_field(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match="gateway") as caught:
        check_remote_url(url, field="gateway", allow_loopback=False)
    assert words in str(caught.value)
    assert caught.value.fix


def test_loopback_is_allowed_only_when_the_market_is_on_this_machine() -> None:
    assert check_remote_url("http://127.0.0.1:9464/", field="g", allow_loopback=True) == (
        "http://127.0.0.1:9464"
    )
    with pytest.raises(ConfigError, match="unspecified"):
        check_remote_url("http://0.0.0.0:9464", field="g", allow_loopback=True)
    assert is_loopback_url("http://127.0.0.1:8545")
    assert is_loopback_url("http://localhost:8545")
    assert not is_loopback_url("http://10.77.0.1:8545")
