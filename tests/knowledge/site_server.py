"""A small help-centre website on loopback for the crawler's tests: pages with navigation and
footers, robots.txt, ETag and Last-Modified validators, a page that changes, one that disappears,
a redirect, a PDF, a sitemap and a page that never answers in time."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fpdf import FPDF

NAV = '<nav><a href="/help/">Home</a> <a href="/help/shipping">Menu entry shipping</a></nav>'
FOOTER = "<footer>Copyright 2026 Example Ltd. Cookie settings. Imprint.</footer>"


def page(title: str, body: str) -> str:
    return (
        f"<html><head><title>{title} | Example Help</title></head><body>{NAV}"
        f"<header>Example Help Centre banner</header><main><h1>{title}</h1>{body}</main>"
        f"{FOOTER}</body></html>"
    )


def pdf_bytes(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@dataclass
class Site:
    """The site's state, which a test changes between crawls; `requests` logs what was asked."""

    pages: dict[str, str] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    robots: str = ""
    slow: set[str] = field(default_factory=set)
    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def statuses(self, path: str) -> list[int]:
        return [status for asked, _, status in self.requests if asked == path]

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for asked, headers, _ in self.requests if asked == path]


def help_centre() -> Site:
    """The fixture site under /help/."""
    site = Site()
    site.robots = "User-agent: *\nDisallow: /help/private/\n"
    site.pages["/help/"] = page(
        "Help centre",
        '<ul><li><a href="returns">Returns</a></li><li><a href="/help/shipping">Shipping</a></li>'
        '<li><a href="changing#top">Opening hours</a></li><li><a href="vanishing">Gift cards</a>'
        '</li><li><a href="old-warranty">Warranty</a></li><li><a href="private/staff">Staff</a>'
        '</li><li><a href="manual.pdf">Manual</a></li><li><a href="slow">Slow</a></li>'
        '<li><a href="/shop/cart">Cart</a></li><li><a href="http://elsewhere.invalid/x">Other'
        "</a></li></ul>",
    )
    site.pages["/help/returns"] = page(
        "Returns",
        "<p>You can return unworn clothes within thirty days of delivery for a full refund.</p>",
    )
    site.etags["/help/returns"] = '"returns-v1"'
    site.pages["/help/shipping"] = page(
        "Shipping", "<p>Parcels travel with the carrier Zephyr and arrive in three days.</p>"
    )
    site.modified["/help/shipping"] = 1_700_000_000.0
    site.pages["/help/changing"] = page(
        "Opening hours", "<p>Our support desk is open Monday to Friday from nine to five.</p>"
    )
    site.pages["/help/vanishing"] = page(
        "Gift cards", "<p>Gift cards never expire and can be used for any purchase.</p>"
    )
    site.redirects["/help/old-warranty"] = "/help/warranty"
    site.pages["/help/warranty"] = page(
        "Warranty", "<p>Every kettle carries a warranty of two years against defects.</p>"
    )
    site.pages["/help/private/staff"] = page("Staff", "<p>Internal staff rota.</p>")
    site.pages["/shop/cart"] = page("Cart", "<p>Your cart is empty.</p>")
    site.pages["/help/slow"] = page("Slow", "<p>This page takes forever.</p>")
    site.slow.add("/help/slow")
    site.files["/help/manual.pdf"] = (
        "application/pdf",
        pdf_bytes("Descaling the kettle: use one spoon of citric acid every month."),
    )
    return site


def serve(site: Site) -> tuple[ThreadingHTTPServer, str]:
    """Start the site on 127.0.0.1 on a free port; returns the server and its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path
            status = self._answer(path)
            site.requests.append((path, dict(self.headers.items()), status))

        def _answer(self, path: str) -> int:
            if path == "/robots.txt":
                return self._send(200, "text/plain", site.robots.encode())
            if path in site.slow:
                site.release.wait(30)
                return self._send(200, "text/html", site.pages[path].encode())
            if path in site.gone or (path not in site.pages and path not in site.files):
                if path in site.redirects:
                    self.send_response(301)
                    self.send_header("Location", site.redirects[path])
                    self.end_headers()
                    return 301
                return self._send(404 if path not in site.gone else 410, "text/plain", b"gone")
            if path in site.files:
                kind, data = site.files[path]
                return self._send(200, kind, data)
            etag = site.etags.get(path)
            if etag and self.headers.get("If-None-Match") == etag:
                return self._send(304, "", b"")
            modified = site.modified.get(path)
            if modified and self.headers.get("If-Modified-Since") == formatdate(
                modified, usegmt=True
            ):
                return self._send(304, "", b"")
            extra = {"ETag": etag} if etag else {}
            if modified:
                extra["Last-Modified"] = formatdate(modified, usegmt=True)
            return self._send(200, "text/html; charset=utf-8", site.pages[path].encode(), extra)

        def _send(
            self, status: int, kind: str, body: bytes, extra: dict[str, str] | None = None
        ) -> int:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            return status

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
