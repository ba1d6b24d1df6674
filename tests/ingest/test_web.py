"""Web sources against a real HTTP server on 127.0.0.1 (tests/ingest/web_site.py): a 30-page site
with a sitemap and robots.txt, synced twice with conditional requests; and the attacks a hostile site
can try (a body without Content-Length over the size limit, a redirect to another host, a private
address). The server is on loopback, so every test but the last sets ``web.allow_private = true``."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.kb import KnowledgeBase
from tests.conftest import write
from tests.ingest.web_site import Site, page_html, serve

TOPICS = [
    "harbour crane", "bakery oven", "library scanner", "greenhouse heater", "ferry engine",
    "museum humidifier", "stadium floodlight", "bicycle pump", "school boiler", "hospital elevator",
    "airport conveyor", "farm tractor", "brewery kettle", "theatre curtain", "printing press",
    "mountain cable car", "laundry dryer", "observatory dome", "ice rink resurfacer", "canal lock gate",
    "bee hive monitor", "wind turbine", "fish ladder", "river dredger", "zoo feeding robot",
    "post sorting machine", "orchard sprayer", "tram pantograph", "dairy milking robot", "chapel organ",
]  # fmt: skip
FAST = {"web.allow_private": True, "web.backoff_s": 0.01, "web.retries": 1}


def topic_page(i: int, fact: str | None = None) -> str:
    name = TOPICS[i]
    fact = fact or f"The {name} was serviced {i + 2} times last year by the maintenance team."
    body = (
        f"This page describes the {name} at site number {i}. {fact} "
        f"Operators of the {name} must read the safety notes before every shift and log each inspection."
    )
    return page_html(name.title(), body, ["/", f"/p/{(i + 1) % 30}.html"])


@pytest.fixture(scope="module")
def site():
    s = Site(robots="User-agent: *\nDisallow: /p/13.html\n")
    s.pages = {f"/p/{i}.html": topic_page(i) for i in range(30)}
    s.pages["/p/5.html"] = topic_page(5, "The museum humidifier keeps the air of the gallery at 40 percent humidity.")
    s.special["/moved.html"] = lambda handler: _redirect(handler, "/p/13.html")  # to the disallowed page
    server, _ = serve(s)
    yield s
    server.shutdown()


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    from groundwork.config import load_settings

    return KnowledgeBase(settings=load_settings(kb=tmp_path_factory.mktemp("web") / "kb", **FAST))


def _redirect(handler, location: str) -> None:
    handler.send_response(301)
    handler.send_header("Location", location)
    handler.end_headers()


def _pages(hits):
    return [h for h in hits if h.path.startswith("/p/")]


def test_sitemap_sync_fetches_only_what_changed(site: Site, kb: KnowledgeBase) -> None:
    r1 = kb.ingest([f"{site.url}/sitemap.xml"])
    assert (r1.added, r1.failed) == (29, []), r1.failed
    assert site.hits("/p/13.html") == []  # disallowed by robots.txt: never requested
    assert {d.doc_id for d in kb.documents()} == {f"{site.url}/p/{i}.html" for i in range(30) if i != 13}
    assert next(d for d in kb.documents() if d.doc_id.endswith("/p/5.html")).title == "Museum Humidifier"

    # One page changes, one disappears (from the sitemap and the server).
    site.pages["/p/5.html"] = topic_page(
        5, "The museum humidifier keeps the air of the gallery at 65 percent humidity."
    )
    del site.pages["/p/7.html"]
    site.log.clear()
    r2 = kb.ingest([f"{site.url}/sitemap.xml"])
    assert (r2.added, r2.updated, r2.unchanged, r2.deleted, r2.failed) == (0, 1, 27, 1, [])
    pages = _pages(site.log)
    assert len(pages) == 28 and all(h.if_none_match for h in pages)  # every request conditional
    assert [h.path for h in pages if h.status == 200] == ["/p/5.html"]
    assert sum(h.status == 304 for h in pages) == 27 == r2.not_modified
    assert f"{site.url}/p/7.html" not in {d.doc_id for d in kb.documents()}

    answer = kb.ask("At what humidity does the museum humidifier keep the gallery air?")
    assert "65" in answer.answer and "40" not in answer.answer
    assert f"{site.url}/p/5.html" in {c.source for c in answer.citations}


def test_transient_errors_never_delete(site: Site, kb: KnowledgeBase) -> None:
    """A 503 (after its retries) fails that page alone; its document stays."""
    kb.ingest([f"{site.url}/sitemap.xml"])  # in step with the site
    site.fail["/p/3.html"] = 503
    site.log.clear()
    try:
        r = kb.ingest([f"{site.url}/sitemap.xml"])
    finally:
        del site.fail["/p/3.html"]
    assert r.deleted == 0 and [f.path for f in r.failed] == [f"{site.url}/p/3.html"]
    assert "HTTP 503 after 2 attempts" in r.failed[0].reason
    assert len(site.hits("/p/3.html")) == 2  # web.retries = 1: bounded
    assert f"{site.url}/p/3.html" in {d.doc_id for d in kb.documents()}


def test_a_redirect_is_checked_against_robots_txt(site: Site, make_kb, tmp_path: Path) -> None:
    r = make_kb(**FAST).ingest([], url_lists=[write(tmp_path / "u.txt", f"{site.url}/moved.html\n")])
    assert r.added == 0 and "robots.txt disallows" in r.failed[0].reason
    assert site.hits("/p/13.html") == []


def test_crawl_from_start_page_follows_links_within_depth(site: Site, tmp_path: Path) -> None:
    from groundwork.config import load_settings

    def crawl(**limits):
        kb = KnowledgeBase(settings=load_settings(kb=tmp_path / "kb", **FAST, **limits))
        return kb, kb.ingest([f"{site.url}/p/0.html"])

    kb, r = crawl(**{"web.max_depth": 2})
    # 0 -> 1 -> 2 (each page links to the next one and to '/', which is a 404 here)
    assert r.failed == [] and {d.doc_id for d in kb.documents()} == {f"{site.url}/p/{i}.html" for i in range(3)}
    kb, r = crawl(**{"web.max_depth": 1})  # page 2 is no longer reached by the crawl: deleted
    assert r.deleted == 1 and {d.doc_id for d in kb.documents()} == {f"{site.url}/p/{i}.html" for i in range(2)}
    kb, r = crawl(**{"web.max_depth": 1, "web.max_pages": 1})  # a listing cut short deletes nothing
    assert r.deleted == 0 and len(kb.documents()) == 2


@pytest.fixture(scope="module")
def hostile():
    other = Site(pages={"/x.html": page_html("Elsewhere", "A page on another host that must never be fetched.")})
    other_server, _ = serve(other)

    def big(handler) -> None:  # 3 MB, no Content-Length: the end is only known when the socket closes
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        for _ in range(300):
            handler.wfile.write(b"<p>" + b"x" * 10_000 + b"</p>")

    def away(handler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{other.url}/x.html")
        handler.end_headers()

    s = Site(pages={"/ok.html": topic_page(1)}, special={"/big.html": big, "/away.html": away})
    server, _ = serve(s)
    yield s, other
    server.shutdown()
    other_server.shutdown()


def test_oversized_body_and_offsite_redirect_fail_alone(hostile, make_kb, tmp_path: Path) -> None:
    s, other = hostile
    urls = write(tmp_path / "urls.txt", f"# pages\n{s.url}/ok.html\n{s.url}/big.html\n{s.url}/away.html\n")
    kb = make_kb(**FAST, **{"web.max_page_mb": 1.0})
    r = kb.ingest([], url_lists=[urls])
    assert r.added == 1
    reasons = {f.path: f.reason for f in r.failed}
    assert "web.max_page_mb" in reasons[f"{s.url}/big.html"] and "while reading" in reasons[f"{s.url}/big.html"]
    assert "another site" in reasons[f"{s.url}/away.html"]
    assert other.log == []  # the redirect was not followed


def test_private_address_refused_by_default(hostile, tmp_path: Path) -> None:
    """Through the CLI, with the default settings (web.allow_private = false)."""
    import json

    from typer.testing import CliRunner

    from groundwork.cli import app

    s, _ = hostile
    s.log.clear()
    out = CliRunner().invoke(app, ["--kb", str(tmp_path / "kb"), "ingest", f"{s.url}/ok.html", "--json"])
    assert out.exit_code == 1, out.output  # finished, with a failure
    [failed] = json.loads(out.output)["failed"]
    assert "127.0.0.1" in failed["reason"] and "web.allow_private" in failed["reason"]
    assert s.log == []  # not even robots.txt was requested


def test_dns_rebinding_is_refused_on_the_connected_address(hostile, make_kb, monkeypatch, tmp_path: Path) -> None:
    """The host resolves to a public address when checked, then to 127.0.0.1 when connecting (DNS
    rebinding): the connected address is checked again and the body is never ingested."""
    import socket

    s, _ = hostile
    port = int(s.url.rsplit(":", 1)[1])
    real, calls = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        # The fetcher's check asks with type=...; the socket's connect asks positionally: the check
        # always sees a public address, the connection always goes to loopback.
        calls.append("check" if "type" in kwargs else "connect")
        ip = "93.184.216.34" if calls[-1] == "check" else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    kb = make_kb(**{"web.backoff_s": 0.01, "web.retries": 0})
    r = kb.ingest([], url_lists=[write(tmp_path / "u.txt", f"http://rebind.test:{port}/ok.html\n")])
    assert r.added == 0 and {"check", "connect"} <= set(calls)
    assert "127.0.0.1" in r.failed[0].reason and "web.allow_private" in r.failed[0].reason
