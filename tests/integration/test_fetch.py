"""The URL fetcher (engine/fetch.py) against servers the test starts on 127.0.0.x: no
internal address in any spelling or behind a redirect, a total deadline however slowly the
server drips, a size cap, a concurrency limit, and the CLI's own unrestricted policy."""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import replace

import pytest

from lookalike.demo.samples import sample_photos
from lookalike.engine.fetch import CLI_POLICY, Fetcher, FetchFailed, FetchPolicy, address_allowed, fetch
from lookalike.errors import Busy, Forbidden, InvalidQuery, TooLarge
from tests.support.hostile import HostileServer, jpeg_bytes

SERVER = FetchPolicy()  # what `lookalike serve --allow-url-queries` uses, before any --url-allow


@pytest.fixture(scope="module")
def internal():
    """An "internal" service on loopback that no URL query may reach."""
    with HostileServer("127.0.0.1", image=jpeg_bytes(sample_photos()["coffee"])) as s:
        yield s


@pytest.fixture(scope="module")
def outside():
    """A stand-in for a public server: 127.0.0.2, allow-listed explicitly."""
    with HostileServer("127.0.0.2", image=jpeg_bytes(sample_photos()["rocket"]), drip_s=0.5) as s:
        yield s


def allow_outside(**kw) -> FetchPolicy:
    return replace(SERVER, allow=(ipaddress.ip_network("127.0.0.2/32"),), **kw)


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost",
                                  "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0", "[::]"])
def test_every_spelling_of_loopback_is_refused(internal, host):
    before = internal.requests
    with pytest.raises(Forbidden) as e:
        fetch(f"http://{host}:{internal.port}/secret", SERVER)
    assert str(e.value) == "could not fetch the URL: its address is not allowed on this server"
    assert internal.requests == before  # never connected


@pytest.mark.parametrize("ip", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
                                "255.255.255.255", "240.0.0.1", "fe80::1", "fc00::1", "ff02::1", "::ffff:8.8.8.8",
                                "::8.8.8.8", "2002:7f00:1::1", "64:ff9b::7f00:1", "192.0.2.1"])
def test_non_public_addresses_are_refused(ip):
    assert not address_allowed(ipaddress.ip_address(ip), SERVER)


def test_public_addresses_and_the_allow_list_pass():
    assert address_allowed(ipaddress.ip_address("8.8.8.8"), SERVER)
    assert address_allowed(ipaddress.ip_address("2606:4700::1111"), SERVER)
    assert address_allowed(ipaddress.ip_address("127.0.0.2"), allow_outside())
    assert not address_allowed(ipaddress.ip_address("127.0.0.1"), allow_outside())


def test_a_redirect_to_an_internal_address_is_refused(internal, outside):
    before = internal.requests
    with pytest.raises(Forbidden):
        fetch(f"{outside.base}/redirect?to=http://127.0.0.1:{internal.port}/secret", allow_outside())
    with pytest.raises(Forbidden):  # the decimal spelling behind a redirect too
        fetch(f"{outside.base}/redirect?to=http://2130706433:{internal.port}/secret", allow_outside())
    assert internal.requests == before
    # An allowed redirect is followed.
    assert fetch(f"{outside.base}/redirect?to=/image.jpg", allow_outside())[:2] == b"\xff\xd8"


def test_errors_name_no_detail_on_the_server_but_do_for_the_cli(outside, internal):
    with pytest.raises(FetchFailed) as e:
        fetch(f"{outside.base}/missing", allow_outside())
    assert str(e.value) == "could not fetch the URL" and e.value.detail == "HTTP 404"
    with pytest.raises(FetchFailed) as e:
        fetch(f"{outside.base}/missing", CLI_POLICY)
    assert "HTTP 404" in str(e.value)
    assert fetch(f"{internal.base}/image.jpg", CLI_POLICY)[:2] == b"\xff\xd8"  # the CLI user fetches what they ask


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_the_deadline_covers_the_whole_download(outside, path):
    t0 = time.monotonic()
    with pytest.raises(FetchFailed) as e:
        fetch(f"{outside.base}{path}", allow_outside(deadline_s=1.5))
    took = time.monotonic() - t0
    assert 1.4 < took < 2.5, took
    assert "deadline" in e.value.detail


def test_the_size_cap_covers_the_whole_download(outside):
    with pytest.raises(TooLarge) as e:
        fetch(f"{outside.base}/big", allow_outside(max_bytes=2_000_000))
    assert "2 MB limit" in str(e.value)


@pytest.mark.parametrize("url", ["http://a b/x.jpg", "http://example.com/x.jpg\r\nX-Injected: 1", "ftp://example.com/x",
                                 "file:///etc/passwd", "http://example.com:99999/x", "http:///x", "gopher://x"])
def test_malformed_urls_are_invalid_queries(url):
    with pytest.raises(InvalidQuery):
        fetch(url, SERVER)


def test_downloads_have_their_own_small_concurrency_limit(outside):
    fetcher = Fetcher(allow_outside(deadline_s=2.0), concurrency=2)
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            fetcher.fetch(f"{outside.base}/drip")
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    with pytest.raises(Busy):
        fetcher.fetch(f"{outside.base}/image.jpg")
    assert time.monotonic() - t0 < 0.1  # refused at once, not queued
    for t in threads:
        t.join()
    assert len(errors) == 2 and all(isinstance(e, FetchFailed) for e in errors)
    assert fetcher.fetch(f"{outside.base}/image.jpg")[:2] == b"\xff\xd8"  # slots come back
