"""Websites as knowledge: crawl a help centre into the knowledge base and keep it in sync.

A site is a start URL (crawled within its host and the folder of its path) or a `sitemap.xml`
(its URLs, no link following). Fetching is polite: robots.txt is honoured (with its crawl delay),
requests are spaced by a delay and a few at a time, and a page limit ends a crawl. HTML pages
keep their main content only (trafilatura drops navigation, headers and footers); PDFs and plain
text are read as files are. A page's URL is its document's source, so citations link to it.

`sync` fetches every known page again with conditional requests (ETag / Last-Modified): an
unchanged page costs a 304 and embeds nothing, a changed one replaces its chunks, one that is gone
(404/410, now excluded by robots.txt, redirected off the site, dropped from the sitemap) leaves the
knowledge base.

>>> site = Website(db.session, kb, CrawlPolicy(delay_s=0.5))
>>> site.ingest("https://help.example.com/").pages
42
"""

from __future__ import annotations

import json
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.base import KnowledgeBase
from knowledge.errors import KnowledgeError, UnreadableDocument
from knowledge.loaders import SourceDocument, load_document
from knowledge.records import DocumentRow
from knowledge.web_records import WebPageRow, WebSiteRow

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FILE_TYPES = {"application/pdf": ".pdf", "text/plain": ".txt", "text/markdown": ".md"}
GONE = frozenset({404, 410})
MAX_REDIRECTS = 5
BOILERPLATE = [
    "nav",
    "header",
    "footer",
    "aside",
    "script",
    "style",
    "noscript",
    "template",
    "form",
]
"""Elements that are never a page's content; trafilatura then finds the main text in the rest
(class-named menus and footers included)."""

PageProgress = Callable[[str, str], None]
"""Called with (URL, what happened: fetched, unchanged, gone, skipped, failed) per page."""


class WebsiteError(KnowledgeError):
    """A site cannot be crawled at all (bad URL, host not allowed, robots.txt forbids it)."""


@dataclass(frozen=True)
class CrawlPolicy:
    """How politely and how far to crawl.

    `allowed_hosts` empty: any host named by a start URL; else only those (and their
    subdomains).
    """

    user_agent: str = "assistant-crawler/1.0"
    concurrency: int = 2
    delay_s: float = 0.5
    max_pages: int = 500
    timeout_s: float = 15.0
    max_bytes: int = 20_000_000
    allowed_hosts: tuple[str, ...] = ()

    def allows_host(self, host: str) -> bool:
        host = host.lower()
        return not self.allowed_hosts or any(
            host == h or host.endswith(f".{h}") for h in self.allowed_hosts
        )


@dataclass
class SyncReport:
    """What one crawl or sync did, page by page."""

    sites: int = 0
    pages: int = 0
    """Pages requested (not those robots.txt excludes)."""
    updated: int = 0
    """Pages whose text was new or changed: embedded."""
    unchanged: int = 0
    """Pages that answered 304, or whose text was the same: nothing embedded."""
    chunks: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    kb_version: int = 0


@dataclass(frozen=True)
class Scope:
    """The part of the web one site covers: a host and a path prefix."""

    host: str
    prefix: str

    @classmethod
    def of(cls, start_url: str) -> Scope:
        parts = urlsplit(start_url)
        path = parts.path or "/"
        folder = path if path.endswith("/") else str(PurePosixPath(path).parent).rstrip("/") + "/"
        return cls((parts.hostname or "").lower(), folder)

    def covers(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            parts.scheme in {"http", "https"}
            and (parts.hostname or "").lower() == self.host
            and (parts.path or "/").startswith(self.prefix)
        )


def canonical(url: str) -> str:
    """A page's identity: no fragment, an empty path as `/`."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    return url if parts.path else parts._replace(path="/").geturl()


def is_sitemap(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".xml")


@dataclass
class _Fetched:
    """One page's outcome: `kind` is page, unchanged, gone, skipped or failed."""

    url: str
    kind: str
    document: SourceDocument | None = None
    content: bytes = b""
    links: list[str] = field(default_factory=list)
    etag: str = ""
    last_modified: str = ""
    reason: str = ""
    moved_from: str = ""
    asked: bool = True
    """False when no request was made (outside the site, excluded by robots.txt)."""


@dataclass
class _Known:
    etag: str
    last_modified: str
    links: list[str]
    indexed: bool


class _Gate:
    """Spaces request starts by `delay_s`, whichever worker makes them."""

    def __init__(self, delay_s: float) -> None:
        self._delay, self._next, self._lock = delay_s, 0.0, threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._delay
        if start > now:
            time.sleep(start - now)


class Website:
    """Crawl sites into a knowledge base and keep them in sync."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        knowledge: KnowledgeBase,
        policy: CrawlPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._sessions = sessions
        self._knowledge = knowledge
        self.policy = policy or CrawlPolicy()
        self._client = client or httpx.Client(
            headers={"User-Agent": self.policy.user_agent},
            timeout=self.policy.timeout_s,
            follow_redirects=False,
        )

    # ---- public

    def ingest(self, start_url: str, progress: PageProgress | None = None) -> SyncReport:
        """Add a site (a start URL or a sitemap) and crawl it."""
        start = canonical(start_url)
        parts = urlsplit(start)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise WebsiteError(f"{start_url}: not an http(s) URL")
        if not self.policy.allows_host(parts.hostname):
            raise WebsiteError(
                f"{start_url}: host {parts.hostname} is not in ASSISTANT_WEB_HOSTS "
                f"({', '.join(self.policy.allowed_hosts)})"
            )
        with self._sessions.begin() as session:
            site = session.scalar(select(WebSiteRow).where(WebSiteRow.start_url == start))
            if site is None:
                site = WebSiteRow(start_url=start, added_at=datetime.now(UTC))
                session.add(site)
                session.flush()
            site_id = site.id
        report = SyncReport()
        self._sync_site(site_id, start, report, progress)
        return report

    def sync(
        self, start_urls: Sequence[str] = (), progress: PageProgress | None = None
    ) -> SyncReport:
        """Re-crawl every site (or those named) incrementally; a site that cannot be reached now
        (robots.txt unreachable or forbidding) is reported and keeps its pages."""
        wanted = {canonical(u) for u in start_urls}
        report = SyncReport()
        for site_id, start in self.sites():
            if wanted and start not in wanted:
                continue
            try:
                self._sync_site(site_id, start, report, progress)
            except WebsiteError as err:
                report.failed.append(str(err))
        return report

    def sites(self) -> list[tuple[int, str]]:
        """(id, start URL) of every site, in the order they were added."""
        with self._sessions() as session:
            rows = session.execute(
                select(WebSiteRow.id, WebSiteRow.start_url).order_by(WebSiteRow.id)
            )
            return [(i, u) for i, u in rows.tuples()]

    def forget(self, start_url: str) -> list[str]:
        """Drop a site: its pages leave the knowledge base and sync no longer visits it."""
        start = canonical(start_url)
        with self._sessions.begin() as session:
            site = session.scalar(select(WebSiteRow).where(WebSiteRow.start_url == start))
            if site is None:
                return []
            urls = list(
                session.scalars(select(WebPageRow.url).where(WebPageRow.site_id == site.id))
            )
            session.execute(delete(WebPageRow).where(WebPageRow.site_id == site.id))
            session.delete(site)
        return self._knowledge.forget(urls)

    def hosts(self) -> list[str]:
        """The hosts of every site: answers may link to them."""
        return sorted({(urlsplit(u).hostname or "").lower() for _, u in self.sites()} - {""})

    def close(self) -> None:
        self._client.close()

    # ---- one site

    def _sync_site(
        self, site_id: int, start: str, report: SyncReport, progress: PageProgress | None
    ) -> None:
        scope = Scope.of(start)
        robots = self._robots(start)
        if not robots.can_fetch(self.policy.user_agent, start):
            raise WebsiteError(f"{start}: robots.txt does not allow crawling it")
        known = self._known(site_id)
        listed: set[str] | None = None
        if is_sitemap(start):
            listed = self._sitemap(start, scope, report)
            seeds = sorted(listed)
        else:
            seeds = [start, *sorted(u for u in known if u != start)]
        crawl = _Crawl(self, scope, robots, known, follow=listed is None)
        outcomes: dict[str, _Fetched] = {}

        def documents() -> Iterator[tuple[SourceDocument, bytes]]:
            for fetched in crawl.run(seeds):
                outcomes[fetched.url] = fetched
                report.pages += fetched.asked
                if fetched.kind == "page" and fetched.document is not None:
                    yield fetched.document, fetched.content
                self._tell(fetched, report, progress)

        ingested = self._knowledge.ingest_documents(documents())
        report.updated += ingested.files - ingested.unchanged
        report.unchanged += ingested.unchanged
        report.chunks += ingested.chunks
        report.failed += ingested.failed
        report.kb_version = ingested.kb_version
        gone = {u for u, f in outcomes.items() if f.kind == "gone"}
        gone |= {f.moved_from for f in outcomes.values() if f.moved_from}
        if listed is not None:
            gone |= set(known) - listed
        empty = {u for u, f in outcomes.items() if f.kind == "page" and f.document is None}
        self._record(site_id, outcomes, gone)
        report.removed += self._knowledge.forget(sorted((gone | empty) & self._indexed(scope)))
        report.sites += 1

    def _tell(self, fetched: _Fetched, report: SyncReport, progress: PageProgress | None) -> None:
        what = "fetched" if fetched.kind == "page" else fetched.kind
        if what == "unchanged":
            report.unchanged += 1
        elif what == "skipped":
            report.skipped.append(f"{fetched.url}: {fetched.reason}")
        elif what == "failed":
            report.failed.append(f"{fetched.url}: {fetched.reason}")
        if progress:
            progress(fetched.url, what)

    def _known(self, site_id: int) -> dict[str, _Known]:
        """The site's pages as last fetched; validators only for pages still in the knowledge
        base (one removed by hand is fetched whole again)."""
        with self._sessions() as session:
            rows = session.scalars(select(WebPageRow).where(WebPageRow.site_id == site_id)).all()
            indexed = set(
                session.scalars(
                    select(DocumentRow.source).where(DocumentRow.source.in_([r.url for r in rows]))
                )
            )
        return {
            r.url: _Known(
                r.etag if r.url in indexed or not r.indexed else "",
                r.last_modified if r.url in indexed or not r.indexed else "",
                json.loads(r.links or "[]"),
                r.indexed,
            )
            for r in rows
        }

    def _indexed(self, scope: Scope) -> set[str]:
        with self._sessions() as session:
            sources = session.scalars(
                select(DocumentRow.source).where(DocumentRow.source.like("http%"))
            )
            return {s for s in sources if scope.covers(s)}

    def _record(self, site_id: int, outcomes: dict[str, _Fetched], gone: set[str]) -> None:
        """Remember validators and links of every page fetched; forget pages that are gone."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            if gone:
                session.execute(delete(WebPageRow).where(WebPageRow.url.in_(sorted(gone))))
            for url, fetched in outcomes.items():
                if fetched.kind not in {"page", "unchanged"}:
                    continue
                row = session.get(WebPageRow, url) or WebPageRow(url=url)
                row.site_id, row.fetched_at = site_id, now
                if fetched.kind == "page":
                    row.etag, row.last_modified = fetched.etag, fetched.last_modified
                    row.links = json.dumps(fetched.links)
                    row.indexed = fetched.document is not None
                session.add(row)
            site = session.get(WebSiteRow, site_id)
            if site is not None:
                site.synced_at = now

    # ---- fetching

    def _robots(self, start: str) -> RobotFileParser:
        """The host's robots.txt; none (4xx) allows everything, an unreachable one nothing."""
        parts = urlsplit(start)
        where = f"{parts.scheme}://{parts.netloc}/robots.txt"
        robots = RobotFileParser(where)
        try:
            response = self._client.get(where)
        except httpx.HTTPError as err:
            raise WebsiteError(f"{where}: {type(err).__name__}: {err}") from err
        if response.status_code in {401, 403} or response.status_code >= 500:
            robots.disallow_all = True  # type: ignore[attr-defined]  # what RobotFileParser.read sets; typeshed omits it
        elif response.status_code >= 400:
            robots.allow_all = True  # type: ignore[attr-defined]  # read() sets it on a 4xx; typeshed omits it
        else:
            robots.parse(response.text.splitlines())
        return robots

    def _sitemap(self, url: str, scope: Scope, report: SyncReport, depth: int = 0) -> set[str]:
        """Page URLs of a sitemap (following a sitemap index one level down) within the scope."""
        try:
            response = self._client.get(url)
            response.raise_for_status()
            root = ET.fromstring(response.content)
        except (httpx.HTTPError, ET.ParseError) as err:
            raise WebsiteError(f"{url}: cannot read the sitemap ({err})") from err
        locations = [e.text.strip() for e in root.iter() if e.tag.endswith("loc") and e.text]
        if root.tag.endswith("sitemapindex") and depth == 0:
            return set().union(*(self._sitemap(loc, scope, report, 1) for loc in locations))
        urls = {canonical(u) for u in locations}
        report.skipped += [
            f"{u}: outside {scope.host}{scope.prefix}" for u in urls if not scope.covers(u)
        ]
        return {u for u in urls if scope.covers(u)}

    def fetch(self, url: str, known: _Known | None, scope: Scope) -> _Fetched:
        """One page, conditionally when it was fetched before; redirects are followed only
        within the site (one that leaves it means the page is gone from the site)."""
        headers = {}
        if known and known.etag:
            headers["If-None-Match"] = known.etag
        if known and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        final = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                with self._client.stream("GET", final, headers=headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        final = canonical(urljoin(final, response.headers["location"]))
                        if not scope.covers(final):
                            return _Fetched(url, "gone", reason=f"redirected off the site: {final}")
                        continue
                    if response.status_code == 304:
                        return _Fetched(url, "unchanged", links=known.links if known else [])
                    if response.status_code in GONE:
                        return _Fetched(url, "gone", reason=f"HTTP {response.status_code}")
                    if response.status_code >= 400:
                        return _Fetched(url, "failed", reason=f"HTTP {response.status_code}")
                    body = self._body(response)
                    break
            else:
                return _Fetched(url, "failed", reason="too many redirects")
        except httpx.HTTPError as err:
            return _Fetched(url, "failed", reason=f"{type(err).__name__}: {err}".rstrip(": "))
        except _TooLarge:
            return _Fetched(url, "skipped", reason=f"larger than {self.policy.max_bytes} bytes")
        fetched = self._parse(final, response.headers, body, scope)
        fetched.moved_from = url if final != url else ""
        return fetched

    def _body(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.policy.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, url: str, headers: httpx.Headers, body: bytes, scope: Scope) -> _Fetched:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        validators = {
            "etag": headers.get("etag", ""),
            "last_modified": headers.get("last-modified", ""),
        }
        try:
            if kind in HTML_TYPES:
                document, links = html_document(url, body, scope)
            elif kind in FILE_TYPES:
                loaded = load_document(Path(f"page{FILE_TYPES[kind]}"), body)
                document = replace(loaded, source=url, url=url)
                if document.title == "page":
                    document = replace(document, title=_title_from_url(url))
                links = []
            else:
                return _Fetched(url, "skipped", reason=f"not a document ({kind or 'no type'})")
        except UnreadableDocument as err:
            return _Fetched(url, "failed", reason=str(err))
        content = f"{document.title}\n{document.text}".encode() if document else b""
        return _Fetched(url, "page", document, content, links, **validators)


class _TooLarge(Exception):
    """A body over the policy's size limit."""


class _Crawl:
    """One breadth-first crawl of a site: waves of up to `concurrency` pages, links followed
    within the scope, robots.txt asked before each URL, at most `max_pages` fetched."""

    def __init__(
        self,
        site: Website,
        scope: Scope,
        robots: RobotFileParser,
        known: dict[str, _Known],
        *,
        follow: bool,
    ) -> None:
        self.site, self.scope, self.robots, self.known, self.follow = (
            site,
            scope,
            robots,
            known,
            follow,
        )
        agent = site.policy.user_agent
        delay = max(site.policy.delay_s, float(robots.crawl_delay(agent) or 0))
        self.gate = _Gate(delay)

    def run(self, seeds: Iterable[str]) -> Iterator[_Fetched]:
        queue = list(dict.fromkeys(canonical(s) for s in seeds))
        seen = set(queue)
        fetched = 0
        policy = self.site.policy
        with ThreadPoolExecutor(max_workers=max(policy.concurrency, 1)) as pool:
            while queue and fetched < policy.max_pages:
                wave = queue[: min(policy.concurrency, policy.max_pages - fetched)]
                queue = queue[len(wave) :]
                fetched += len(wave)
                for result in pool.map(self._one, wave):
                    yield result
                    for link in result.links if self.follow else []:
                        if link not in seen:
                            seen.add(link)
                            queue.append(link)

    def _one(self, url: str) -> _Fetched:
        if not self.scope.covers(url):
            return _Fetched(url, "skipped", reason="outside the site", asked=False)
        if not self.robots.can_fetch(self.site.policy.user_agent, url):
            return _Fetched(url, "gone", reason="excluded by robots.txt", asked=False)
        self.gate.wait()
        return self.site.fetch(url, self.known.get(url), self.scope)


def site_hosts(sessions: sessionmaker[Session]) -> list[str]:
    """The hosts of every website source (answers may link to them)."""
    with sessions() as session:
        starts = session.scalars(select(WebSiteRow.start_url)).all()
    return sorted({(urlsplit(u).hostname or "").lower() for u in starts} - {""})


def html_document(url: str, body: bytes, scope: Scope) -> tuple[SourceDocument | None, list[str]]:
    """A page's main content as Markdown (navigation, headers and footers dropped) and the
    in-scope links it makes; no document when the page has no text of its own.

    The title is the page's `<h1>` (else its `<title>`), taken before the header is dropped.
    """
    import trafilatura
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(body, "html.parser")
    links = []
    for anchor in soup.find_all("a", href=True):
        link = canonical(urljoin(url, str(anchor["href"])))
        if scope.covers(link) and link not in links:
            links.append(link)
    heading = soup.find("h1") or soup.find("title")
    title = heading.get_text(" ", strip=True) if heading else ""
    for tag in soup(BOILERPLATE) + soup(role=["navigation", "banner", "contentinfo"]):
        tag.decompose()
    main = soup.find("main") or soup.find(role="main") or soup.find("article")
    text = trafilatura.extract(
        f"<html><body>{main or soup.body or soup}</body></html>",
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_links=False,
        include_tables=True,
    )
    if not text or not text.strip():
        return None, links
    title = title or _title_from_url(url)
    return SourceDocument(url, title, text, "markdown", url=url), links


def _title_from_url(url: str) -> str:
    name = PurePosixPath(urlsplit(url).path).stem or urlsplit(url).hostname or url
    return name.replace("-", " ").replace("_", " ")
