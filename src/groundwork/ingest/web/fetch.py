"""HTTP for web sources: one ``Fetcher`` per ingest run, over httpx.

Every request is bounded: connect and read timeouts, a response size counted while streaming (a body
without Content-Length cannot get past it), a fixed number of retries with exponential backoff on
429, 5xx and connection errors (``Retry-After`` honoured up to a cap), and redirects followed hop by
hop, each hop checked like the first URL: an allowed host, allowed by robots.txt, and (unless
``web.allow_private``) a public address. The address is checked when resolving and again on the
connected socket before a byte of the body is read, so a DNS answer that changes between the two
(DNS rebinding) still cannot bring a private service's page into the index.

robots.txt follows RFC 9309 (https://www.rfc-editor.org/rfc/rfc9309): a 4xx means no rules; a 5xx or
an unreachable file means nothing may be fetched from that site in this run (a transient failure:
nothing of the site is deleted). Rules are read with ``urllib.robotparser``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx

from groundwork.config import WebSettings
from groundwork.errors import LoaderError

REDIRECTS = {301, 302, 303, 307, 308}
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 2.5: parse at least 500 KiB


class WebError(LoaderError):
    """A URL could not be fetched. ``transient`` (a timeout, a 5xx, a connection error): the page may
    be back next run, so what it had indexed is kept. Otherwise the reason is about the page itself."""

    def __init__(self, url: str, reason: str, transient: bool = False) -> None:
        super().__init__(url, reason)
        self.transient = transient


@dataclass(frozen=True)
class Response:
    """A fetched URL: ``url`` is where it ended after redirects (normalised); ``body`` is empty unless
    ``status`` is 200; ``content_type`` is the media type without parameters, lower case."""

    url: str
    status: int
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None


def normalise(url: str) -> str:
    """The URL as a document id: lower-case scheme and host, no default port, no fragment, '/' for
    an empty path. Raises WebError for a scheme other than http/https, no host, or a user:password
    part (credentials would end up in document ids and logs)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise WebError(url, f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise WebError(url, "not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise WebError(url, "URLs with a user name or password are refused; remove the 'user@' part")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def site(url: str) -> str:
    """The site of a URL for the same-host rule: its host, with the port when it is not 80 or 443
    (so http -> https of one host is the same site; two ports of 127.0.0.1 are two sites)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host if parts.port in (None, 80, 443) else f"{host}:{parts.port}"


def _is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


class Fetcher:
    """GETs URLs of the sites in ``sites`` (see ``site``) within ``settings``' limits.

    Args:
        settings: the web settings (timeouts, retries, sizes, robots agent, private addresses).
        sites: the sites requests and redirects may reach.
        transport: an httpx transport (tests); default: httpx's.
    """

    def __init__(self, settings: WebSettings, sites: set[str], transport: httpx.BaseTransport | None = None) -> None:
        self.settings, self.sites = settings, sites
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,  # each hop is checked here
            headers={"User-Agent": settings.user_agent},
            transport=transport,
            trust_env=False,  # no proxy from the environment: the address checks must see the real peer
        )
        self.max_bytes = int(settings.max_page_mb * 1e6)
        self._robots: dict[str, RobotFileParser | None] = {}
        self._last: dict[str, float] = {}

    def close(self) -> None:
        self.client.close()

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our agent fetch ``url``. Raises WebError (transient) when the
        site's robots.txt is unreachable (RFC 9309: then nothing may be fetched)."""
        rules = self._robots_for(url)
        return rules is None or rules.can_fetch(self.settings.user_agent, url)

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Response:
        """GET ``url`` (conditionally when given its validators: a 304 has an empty body).

        Raises WebError: robots.txt disallows it or a hop, a redirect leaves the allowed sites, too many
        redirects, a private address, a response over ``web.max_page_mb``, or (transient) a timeout,
        connection error, 429 or 5xx still failing after ``web.retries`` retries."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _ in range(self.settings.max_redirects + 1):
            self._check(url)
            if not self.allowed(url):
                raise WebError(url, f"robots.txt disallows it for {self.settings.user_agent}; not fetched")
            resp, location = self._request(url, headers, self.max_bytes)
            if location is None:
                return resp
            target = normalise(urljoin(url, location))
            if site(target) not in self.sites:
                raise WebError(
                    url,
                    f"redirects to another site ({site(target)}), not followed; add it to web.allowed_hosts to allow it",
                )
            url = target
        raise WebError(url, f"more than {self.settings.max_redirects} redirects (web.max_redirects)")

    def _check(self, url: str) -> None:
        if site(url) not in self.sites:
            raise WebError(url, f"{site(url)} is not an allowed site; add it to web.allowed_hosts to allow it")
        if self.settings.allow_private:
            return
        parts = urlsplit(url)
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise WebError(url, f"cannot resolve the host ({exc})", transient=True) from None
        for info in infos:
            if not _is_public(str(info[4][0])):
                raise WebError(url, _PRIVATE.format(addr=info[4][0]))

    def _check_peer(self, url: str, resp: httpx.Response) -> None:
        """The connected address, re-checked before the body is read (DNS rebinding)."""
        if self.settings.allow_private:
            return
        stream = resp.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if peer and not _is_public(str(peer[0])):
            raise WebError(url, _PRIVATE.format(addr=peer[0]))

    def _pace(self, url: str) -> None:
        """Wait so that two requests to one site are ``web.delay_s`` (or its Crawl-delay) apart."""
        key = site(url)
        rules = self._robots.get(key)
        delay = self.settings.delay_s
        if rules is not None:
            asked = rules.crawl_delay(self.settings.user_agent)
            delay = max(delay, min(float(asked or 0), self.settings.max_crawl_delay_s))
        wait = self._last.get(key, 0.0) + delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last[key] = time.monotonic()

    def _request(self, url: str, headers: dict[str, str], max_bytes: int) -> tuple[Response, str | None]:
        """One hop, retried on 429/5xx/connection errors. Returns (response, redirect location or None)."""
        retries = self.settings.retries
        for attempt in range(retries + 1):
            self._pace(url)
            try:
                with self.client.stream("GET", url, headers=headers) as r:
                    self._check_peer(url, r)
                    status = r.status_code
                    if status == 429 or status >= 500:
                        if attempt < retries:
                            time.sleep(self._backoff(attempt, r.headers.get("retry-after")))
                            continue
                        raise WebError(url, f"HTTP {status} after {retries + 1} attempts (web.retries)", transient=True)
                    if status in REDIRECTS and r.headers.get("location"):
                        return self._response(url, r, b""), r.headers["location"]
                    body = self._read(url, r, max_bytes) if status == 200 else b""
                    return self._response(url, r, body), None
            except httpx.TransportError as exc:  # connect/read timeouts, refused, reset, protocol errors
                if attempt < retries:
                    time.sleep(self._backoff(attempt, None))
                    continue
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
                raise WebError(
                    url, f"the request {kind} after {retries + 1} attempts (web.retries)", transient=True
                ) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        wait = self.settings.backoff_s * 2**attempt
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                with contextlib.suppress(TypeError, ValueError):  # neither seconds nor a date: our own backoff
                    wait = parsedate_to_datetime(retry_after).timestamp() - time.time()
        return max(0.0, min(wait, self.settings.max_retry_after_s))

    def _read(self, url: str, r: httpx.Response, max_bytes: int) -> bytes:
        """The body, counted while streaming (decompressed bytes): over ``max_bytes`` fails at once."""
        limit = f"over the {max_bytes / 1e6:.1f} MB limit (web.max_page_mb); not ingested"
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise WebError(url, f"{int(declared) / 1e6:.1f} MB (Content-Length) is {limit}")
        parts, size = [], 0
        for piece in r.iter_bytes():
            size += len(piece)
            if size > max_bytes:
                raise WebError(url, f"the response passed {max_bytes / 1e6:.1f} MB while reading: {limit}")
            parts.append(piece)
        return b"".join(parts)

    @staticmethod
    def _response(url: str, r: httpx.Response, body: bytes) -> Response:
        ctype = r.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return Response(url, r.status_code, body, ctype, r.headers.get("etag"), r.headers.get("last-modified"))

    def _robots_for(self, url: str) -> RobotFileParser | None:
        key = site(url)
        if key in self._robots:
            return self._robots[key]
        parts = urlsplit(url)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        resp = self._robots_response(url, robots_url)
        rules: RobotFileParser | None = None  # 4xx (RFC 9309 2.3.1.3), or a redirect off the site: no rules
        if resp.status == 200:
            rules = RobotFileParser()
            rules.parse(resp.body.decode("utf-8", "replace").splitlines())
        self._robots[key] = rules
        return rules

    def _robots_response(self, url: str, robots_url: str) -> Response:
        """robots.txt, following up to ``web.max_redirects`` redirects within the allowed sites."""
        try:
            for _ in range(self.settings.max_redirects + 1):
                self._check(robots_url)
                resp, location = self._request(robots_url, {}, ROBOTS_MAX_BYTES)
                target = normalise(urljoin(robots_url, location)) if location else ""
                if not target or site(target) not in self.sites:
                    return resp
                robots_url = target
            return resp
        except WebError as exc:
            if exc.transient:
                reason = f"robots.txt of {site(url)} is unreachable ({exc.reason}); nothing fetched from it"
                raise WebError(url, reason, True) from None
            raise


_PRIVATE = (
    "resolves to {addr}, a private, loopback, link-local or reserved address: refused "
    "(set web.allow_private = true to ingest from your own network)"
)
