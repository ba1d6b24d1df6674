"""Listing a web source as ingest items: a sitemap (``https://site/sitemap.xml``, sitemap indexes
followed), a crawl from a start page (links followed breadth-first on the allowed sites, up to
``web.max_depth`` links away), or a list of URLs (``--urls FILE``).

Each page is fetched once per run, conditionally when an earlier run recorded its ETag or
Last-Modified (RFC 9110 13.1: If-None-Match, If-Modified-Since). A 304 becomes an item whose
fingerprint is the page's recorded sha256: the ingest run sees it as unchanged without a download.
The document id is the page's normalised URL after redirects (``fetch.normalise``).

Sync: pages the source yielded before (``PageCache``) and does not yield now (404/410, gone from the
sitemap or the crawl, disallowed by robots.txt) are deleted. A page that fails for a transient reason
(timeout, connection error, 5xx, 429) is reported as failed and keeps what it had indexed; its
recorded links are still followed. A source that cannot be listed at all (its sitemap or start page
unreachable), or a listing cut short by ``web.max_pages``, deletes nothing beyond its 404/410 pages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from groundwork.config import WebSettings
from groundwork.errors import LoaderError
from groundwork.ingest.loaders import SourceName, check_size
from groundwork.ingest.sources import SourceItem
from groundwork.ingest.web.cache import CachedPage, PageCache
from groundwork.ingest.web.fetch import Fetcher, Response, WebError, normalise, site
from groundwork.types import FileResult

# Media type -> the loader (by suffix) that reads it.
SUFFIXES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/pdf": ".pdf",
}
_XML_TYPES = {"application/xml", "text/xml"}
# Links to these are not pages: not requested at all (a request would only find the type refused).
_NOT_PAGES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz", ".mp4", ".mp3"}
URL_LIST_MAX_BYTES = 1_000_000


def is_web(source: str | Path) -> bool:
    return str(source).lower().startswith(("http://", "https://"))


class WebName(SourceName):
    """A page's name: ``str()`` its URL (the document id), ``suffix`` chosen by its media type."""

    def __init__(self, url: str, suffix: str) -> None:
        super().__init__(url)
        self.stem = self.name.split("?", 1)[0].removesuffix(self.suffix) or (urlsplit(url).hostname or url)
        self.suffix = suffix


@dataclass
class WebListing:
    """What the web sources of a run yield: ``items`` to ingest; ``owned`` the document ids they
    yielded before (deleted on sync unless seen again); ``failed`` the sources that could not be
    listed; ``not_modified``: pages answered 304 Not Modified."""

    items: list[SourceItem] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)
    failed: list[FileResult] = field(default_factory=list)
    not_modified: int = 0


def list_sources(
    sources: Sequence[str], url_lists: Sequence[Path], settings: WebSettings, cache_path: Path
) -> WebListing:
    """Every web source (URLs: a sitemap or a start page) and URL list file of a run, listed."""
    out = WebListing()
    cache = PageCache(cache_path)
    try:
        for src in sources:
            _Source(src, settings, cache).list(out)
        for path in url_lists:
            try:
                urls = read_url_list(path)
            except LoaderError as exc:
                out.failed.append(FileResult(str(path), "failed", reason=exc.reason))
                continue
            _Source(f"list:{Path(path).resolve()}", settings, cache, urls).list(out)
    finally:
        cache.close()
    return out


def read_url_list(path: Path) -> list[str]:
    """The URLs of a list file: one per line; blank lines and lines starting with '#' ignored.
    Raises LoaderError for a missing, oversized (over 1 MB) or non-UTF-8 file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(URL_LIST_MAX_BYTES + 1)
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read the URL list ({exc.strerror or exc})") from None
    if len(raw) > URL_LIST_MAX_BYTES:
        raise LoaderError(str(path), "the URL list is over 1 MB; split it")
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise LoaderError(str(path), "the URL list is not UTF-8 text") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


class _Source:
    """One source being listed. ``before``: its pages last run; ``pages``: what this run learnt."""

    def __init__(self, source: str, settings: WebSettings, cache: PageCache, urls: list[str] | None = None) -> None:
        self.source, self.settings, self.cache, self.urls = source, settings, cache, urls
        self.before = cache.pages(source)
        self.pages: list[CachedPage] = []
        self.items: list[SourceItem] = []
        self.failed: list[FileResult] = []
        self.gone: set[str] = set()  # doc ids of pages answered 404/410 or now disallowed
        self.yielded: set[str] = set()
        self.truncated = False
        self.not_modified = 0

    def list(self, out: WebListing) -> None:
        listed = self._list()
        out.failed.extend(self.failed)
        if not listed:  # nothing is known about the source: nothing of it is deleted, its cache is kept
            return
        out.items.extend(self.items)
        out.not_modified += self.not_modified
        owned = {p.doc_url for p in self.before.values()}
        out.owned |= (owned & self.gone) if self.truncated else owned
        self.cache.replace(self.source, self.pages)

    def _list(self) -> bool:
        """Fetch the source's pages; False when the source itself could not be read."""
        try:
            start = [normalise(u) for u in self.urls] if self.urls is not None else [normalise(self.source)]
        except WebError as exc:
            self.failed.append(FileResult(self.source, "failed", reason=exc.reason))
            return False
        sites = {site(u) for u in start} | {h.lower() for h in self.settings.allowed_hosts}
        self.fetcher = Fetcher(self.settings, sites)
        try:
            if self.urls is not None:
                self._visit_all(start)
                return True
            return self._sitemap_or_crawl(start[0])
        finally:
            self.fetcher.close()

    def _sitemap_or_crawl(self, url: str) -> bool:
        prev = self.before.get(url)
        try:
            first = self.fetcher.get(url, *(_validators(prev)))
        except WebError as exc:
            reason = f"{exc.reason}; the source could not be read, nothing of it is deleted"
            self.failed.append(FileResult(self.source, "failed", reason=reason))
            return False
        if first.status == 200 and _sitemap_root(first) is not None:
            self._visit_all(self._sitemap_urls(first))
            return True
        if first.status not in (200, 304):
            reason = f"HTTP {first.status}; the source could not be read, nothing of it is deleted"
            self.failed.append(FileResult(self.source, "failed", reason=reason))
            return False
        self._crawl(url, first)
        return True

    # -- sitemaps ---------------------------------------------------------------------------------------
    def _sitemap_urls(self, first: Response) -> list[str]:
        """Page URLs of the sitemap (and the sitemaps an index names, up to ``web.max_sitemaps``)."""
        urls: list[str] = []
        todo, read = [first], 0
        while todo:
            resp = todo.pop(0)
            read += 1
            root = _sitemap_root(resp)
            if root is None:
                continue
            for loc in (el.text or "" for el in root.iter() if str(el.tag).rsplit("}", 1)[-1] == "loc"):
                try:
                    target = normalise(urljoin(resp.url, loc.strip()))
                except WebError:
                    continue
                if site(target) not in self.fetcher.sites:  # sitemaps protocol: same host only
                    continue
                if str(root.tag).endswith("sitemapindex"):
                    if read + len(todo) < self.settings.max_sitemaps:
                        try:
                            todo.append(self.fetcher.get(target))
                        except WebError as exc:  # a missing child sitemap: its pages are unknown, keep them
                            self.failed.append(FileResult(target, "failed", reason=exc.reason))
                            self.truncated = True
                    else:
                        self.truncated = True
                else:
                    urls.append(target)
        return list(dict.fromkeys(urls))

    # -- pages ------------------------------------------------------------------------------------------
    def _visit_all(self, urls: list[str]) -> None:
        for url in urls:
            if len(self.yielded) >= self.settings.max_pages:
                self.truncated = True
                return
            self._visit(url)

    def _crawl(self, start: str, first: Response) -> None:
        """Breadth-first over links on the allowed sites, up to ``web.max_depth`` links from the start."""
        queue: list[tuple[str, int]] = [(start, 0)]
        seen = {start}
        while queue:
            url, depth = queue.pop(0)
            if len(self.yielded) >= self.settings.max_pages:
                self.truncated = True
                return
            links = self._visit(url, first if url == start else None)
            if depth >= self.settings.max_depth:
                continue
            for link in links:
                if link not in seen and site(link) in self.fetcher.sites:
                    seen.add(link)
                    queue.append((link, depth + 1))

    def _visit(self, url: str, resp: Response | None = None) -> list[str]:
        """Fetch one page (unless given its response) and record the outcome; returns its links."""
        prev = self.before.get(url)
        try:
            if not self.fetcher.allowed(url):
                self.gone |= {prev.doc_url} if prev else set()
                return []
            if resp is None:
                resp = self.fetcher.get(url, *_validators(prev))
        except WebError as exc:
            return self._failed(url, prev, exc.reason)
        if resp.status == 304 and prev is not None:
            self.not_modified += 1
            return self._unchanged(prev)
        if resp.status in (404, 410):
            self.gone |= {prev.doc_url} if prev else set()
            return []
        if resp.status != 200:
            return self._failed(url, prev, f"HTTP {resp.status}")
        suffix = SUFFIXES.get(resp.content_type)
        if suffix is None or resp.content_type not in self.settings.content_types:
            kind = resp.content_type or "no Content-Type"
            return self._failed(url, prev, f"media type {kind} is not ingested (web.content_types)")
        links = _links(resp) if suffix == ".html" else []
        page = CachedPage(
            url,
            resp.url,
            hashlib.sha256(resp.body).hexdigest(),
            resp.content_type,
            resp.etag,
            resp.last_modified,
            links,
        )
        self._yield(page, SourceItem(WebName(resp.url, suffix), partial(_bytes, resp.url, suffix, resp.body)))
        return links

    def _yield(self, page: CachedPage, item: SourceItem) -> None:
        self.pages.append(page)
        if page.doc_url not in self.yielded:  # two URLs redirecting to one page: one document
            self.yielded.add(page.doc_url)
            self.items.append(item)

    def _unchanged(self, prev: CachedPage) -> list[str]:
        """A 304: an item recognised as unchanged by its recorded sha256; read only if the index
        disagrees (then fetched again in full)."""
        suffix = SUFFIXES.get(prev.content_type, ".html")
        read = partial(_refetch, self.settings, set(self.fetcher.sites), prev.url, suffix)
        self._yield(prev, SourceItem(WebName(prev.doc_url, suffix), read, fingerprint=prev.sha256))
        return prev.links

    def _failed(self, url: str, prev: CachedPage | None, reason: str) -> list[str]:
        """A page that could not be fetched: reported, and what it had indexed is kept (its record too)."""
        doc_url = prev.doc_url if prev else url
        if prev is not None:
            self.pages.append(prev)
        if doc_url not in self.yielded:
            self.yielded.add(doc_url)
            self.items.append(SourceItem(WebName(doc_url, ".html"), partial(_fail, doc_url, reason)))
        return prev.links if prev else []


def _validators(prev: CachedPage | None) -> tuple[str | None, str | None]:
    return (prev.etag, prev.last_modified) if prev else (None, None)


def _bytes(url: str, suffix: str, body: bytes, max_bytes: int) -> bytes:
    check_size(url, suffix, len(body), max_bytes)
    return body


def _fail(url: str, reason: str, max_bytes: int) -> bytes:
    raise LoaderError(url, reason)


def _refetch(settings: WebSettings, sites: set[str], url: str, suffix: str, max_bytes: int) -> bytes:
    fetcher = Fetcher(settings, sites)
    try:
        resp = fetcher.get(url)
    finally:
        fetcher.close()
    if resp.status != 200:
        raise LoaderError(url, f"HTTP {resp.status} when fetched again in full")
    return _bytes(resp.url, suffix, resp.body, max_bytes)


def _sitemap_root(resp: Response):
    """The root element when ``resp`` is a sitemap (urlset or sitemapindex), else None. Parsed with
    defusedxml: entity expansion and external entities are refused."""
    head = resp.body.lstrip()[:512]
    if resp.content_type not in _XML_TYPES and not head.startswith(b"<?xml") and b"<urlset" not in head:
        return None
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(resp.body)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    return root if str(root.tag).rsplit("}", 1)[-1] in ("urlset", "sitemapindex") else None


def _links(resp: Response) -> list[str]:
    """The page's <a href> links, absolute and normalised, in order, without fragments."""
    import lxml.html
    from lxml.etree import ParserError

    try:
        root = lxml.html.fromstring(resp.body)
    except (ParserError, ValueError):
        return []
    base = next(iter(root.xpath("//base/@href")), resp.url)
    out = []
    for href in root.xpath("//a/@href"):
        try:
            url = normalise(urljoin(urljoin(resp.url, str(base)), str(href)))
        except WebError:
            continue  # mailto:, javascript:, malformed
        if not urlsplit(url).path.lower().endswith(tuple(_NOT_PAGES)):
            out.append(url)
    return list(dict.fromkeys(out))
