"""A small web site on 127.0.0.1 for the web-source tests: a real ``http.server`` in a thread, with
pages, a sitemap, robots.txt, ETag/If-None-Match (304) and a log of every request it answered."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    path: str
    status: int
    if_none_match: str | None


@dataclass
class Site:
    """Pages by path (HTML text); ``robots`` the robots.txt text; ``special`` handlers by path
    (they write the whole response); ``fail`` paths answered with that status."""

    pages: dict[str, str] = field(default_factory=dict)
    robots: str = ""
    special: dict[str, Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    log: list[Hit] = field(default_factory=list)
    url: str = ""

    def sitemap(self) -> str:
        locs = "".join(f"<url><loc>{self.url}{p}</loc></url>" for p in self.pages)
        return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'

    def hits(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.log if path is None or h.path == path]


def page_html(title: str, body: str, links: list[str] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<html><head><title>{title}</title></head><body><nav><ul>{nav}</ul></nav>"
        f"<article><h1>{title}</h1><p>{body}</p></article></body></html>"
    )


def serve(site: Site) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start ``site`` on a free loopback port (sets ``site.url``); stop with ``server.shutdown()``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", etag: str | None = None):
            site.log.append(Hit(self.path, status, self.headers.get("If-None-Match")))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path
            if path in site.special:
                site.log.append(Hit(path, 0, self.headers.get("If-None-Match")))
                site.special[path](self)
            elif path in site.fail:
                self._send(site.fail[path], b"unavailable", "text/plain")
            elif path == "/robots.txt":
                self._send(200 if site.robots else 404, site.robots.encode(), "text/plain")
            elif path == "/sitemap.xml":
                self._send(200, site.sitemap().encode(), "application/xml")
            elif path in site.pages:
                body = site.pages[path].encode()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", etag=etag)
                else:
                    self._send(200, body, etag=etag)
            else:
                self._send(404, b"not found", "text/plain")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
