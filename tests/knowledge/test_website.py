"""Website ingestion and sync against a real HTTP server on loopback serving a fixture site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.website import CrawlPolicy, Website, WebsiteError
from tests.fakes import HashingEmbedder
from tests.knowledge.site_server import Site, help_centre, page, serve

pytestmark = pytest.mark.unit

POLICY = CrawlPolicy(delay_s=0.0, concurrency=2, timeout_s=0.5)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    fixture = help_centre()
    server, base = serve(fixture)
    yield fixture, base
    fixture.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def kb(database: Database, data_dir: Path, embedder: HashingEmbedder) -> KnowledgeBase:
    return KnowledgeBase(database.session, embedder, data_dir / "index")


def _sources(kb: KnowledgeBase) -> dict[str, str]:
    return {d.source: d.title for d in kb.documents()}


def test_a_crawl_ingests_the_sites_pages_with_their_urls_as_sources(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    fixture, base = site
    web = Website(database.session, kb, POLICY)
    report = web.ingest(f"{base}/help/")
    assert _sources(kb) == {
        f"{base}/help/": "Help centre",
        f"{base}/help/returns": "Returns",
        f"{base}/help/shipping": "Shipping",
        f"{base}/help/changing": "Opening hours",
        f"{base}/help/vanishing": "Gift cards",
        f"{base}/help/warranty": "Warranty",
        f"{base}/help/manual.pdf": "manual",
    }
    # robots.txt's exclusion, another folder and another host are never asked for
    asked = {path for path, _, _ in fixture.requests}
    assert "/help/private/staff" not in asked and "/shop/cart" not in asked
    assert fixture.statuses("/help/old-warranty") == [301]
    assert [f for f in report.failed if "/help/slow" in f] and report.updated == 7
    assert report.pages == 8  # the robots.txt exclusion was never requested, so not counted
    hit = kb.search("which carrier delivers parcels", k=1)[0]
    assert hit.source == f"{base}/help/shipping" and "Zephyr" in hit.text
    texts = " ".join(h.text for h in kb.search("copyright cookie banner menu", k=20))
    assert "Copyright" not in texts and "banner" not in texts and "Menu entry" not in texts
    pdf = kb.search("descaling the kettle", k=1)[0]
    assert "citric acid" in pdf.text and pdf.url == f"{base}/help/manual.pdf"
    assert hit.url == hit.source
    assert web.hosts() == ["127.0.0.1"]


def test_sync_refetches_conditionally_updates_changes_and_removes_gone_pages(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str], embedder: HashingEmbedder
) -> None:
    fixture, base = site
    web = Website(database.session, kb, POLICY)
    web.ingest(f"{base}/help/")
    fixture.requests.clear()
    fixture.pages["/help/changing"] = page(
        "Opening hours", "<p>From May our support desk is also open on Saturdays.</p>"
    )
    fixture.gone.add("/help/vanishing")
    embedded_before = embedder.texts_embedded

    report = web.sync()
    embedded = embedder.texts_embedded - embedded_before

    assert fixture.headers_of("/help/returns")[0]["If-None-Match"] == '"returns-v1"'
    assert fixture.statuses("/help/returns") == [304]
    assert fixture.statuses("/help/shipping") == [304]
    assert report.removed == [f"{base}/help/vanishing"]
    assert f"{base}/help/vanishing" not in _sources(kb)
    assert "Saturdays" in kb.search("support desk opening saturday", k=1)[0].text
    # only the changed page was embedded again; the rest were 304s or identical text
    assert report.updated == 1 and embedded == report.chunks == 1
    assert report.unchanged == 6


def test_a_page_removed_by_robots_or_redirected_away_leaves_the_knowledge_base(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    fixture, base = site
    web = Website(database.session, kb, POLICY)
    web.ingest(f"{base}/help/")
    fixture.robots += "Disallow: /help/returns\n"
    fixture.redirects["/help/shipping"] = "http://elsewhere.invalid/shipping"
    del fixture.pages["/help/shipping"]
    report = web.sync()
    assert set(report.removed) == {f"{base}/help/returns", f"{base}/help/shipping"}
    assert "/help/returns" not in {p for p, _, _ in fixture.requests[-12:]}


def test_a_sitemap_lists_the_pages_and_dropping_one_removes_it(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    fixture, base = site

    def sitemap(paths: list[str]) -> bytes:
        urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
        return (
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{urls}</urlset>"
        ).encode()

    both = sitemap(["/help/returns", "/help/shipping"])
    fixture.files["/sitemap.xml"] = ("application/xml", both)
    web = Website(database.session, kb, POLICY)
    web.ingest(f"{base}/sitemap.xml")
    assert set(_sources(kb)) == {f"{base}/help/returns", f"{base}/help/shipping"}
    fixture.files["/sitemap.xml"] = ("application/xml", sitemap(["/help/returns"]))
    report = web.sync()
    assert report.removed == [f"{base}/help/shipping"]
    assert set(_sources(kb)) == {f"{base}/help/returns"}


def test_the_page_limit_and_the_allowed_hosts_are_kept(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    fixture, base = site
    limited = Website(database.session, kb, CrawlPolicy(delay_s=0.0, max_pages=3, timeout_s=0.5))
    report = limited.ingest(f"{base}/help/")
    assert report.pages == 3 and len(kb.documents()) == 3
    elsewhere = Website(database.session, kb, CrawlPolicy(allowed_hosts=("help.example.com",)))
    with pytest.raises(WebsiteError, match="not in ASSISTANT_WEB_HOSTS"):
        elsewhere.ingest(f"{base}/help/")


def test_forgetting_a_site_removes_its_pages(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    _, base = site
    web = Website(database.session, kb, POLICY)
    web.ingest(f"{base}/help/")
    removed = web.forget(f"{base}/help/")
    assert len(removed) == 7 and kb.documents() == [] and web.sites() == []


def test_cli_ingests_a_site_syncs_it_and_removes_it(site: tuple[Site, str]) -> None:
    from click.testing import CliRunner

    from assistant.cli import App, main

    fixture, base = site
    runner, app = CliRunner(), App(overrides={"embedder": HashingEmbedder()})
    env = {"ASSISTANT_WEB_DELAY_S": "0", "ASSISTANT_WEB_TIMEOUT_S": "0.5"}
    added = runner.invoke(main, ["ingest", f"{base}/help/"], obj=app, env=env)
    assert added.exit_code == 0, added.output
    assert "7 updated" in added.stdout and "/help/slow" in added.stderr
    listed = runner.invoke(main, ["kb", "list", "--json"], obj=app).stdout
    assert f'"source": "{base}/help/returns"' in listed
    assert runner.invoke(main, ["kb", "sites"], obj=app).stdout.split() == [f"{base}/help/"]
    fixture.gone.add("/help/returns")
    synced = runner.invoke(main, ["kb", "sync"], obj=app, env=env)
    assert synced.exit_code == 0, synced.output
    assert "1 removed" in synced.stdout and f"removed {base}/help/returns" in synced.stderr
    removed = runner.invoke(main, ["kb", "remove", f"{base}/help/"], obj=app)
    assert removed.exit_code == 0 and "removed 6 document(s)" in removed.stderr
    assert runner.invoke(main, ["kb", "sync"], obj=app).exit_code == 1


def test_a_markdown_files_front_matter_url_is_its_link(kb: KnowledgeBase, tmp_path: Path) -> None:
    from knowledge.loaders import front_matter

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "---\nurl: https://help.example.com/refunds\ntitle: Refunds\n---\n"
        "Refunds reach your card within five working days.\n"
    )
    (docs / "local.md").write_text("# Local\n\nGift wrapping costs two euros.\n")
    kb.ingest([docs])
    hit = kb.search("when do refunds reach my card", k=1)[0]
    assert (hit.title, hit.url, hit.text.startswith("Refunds reach")) == (
        "Refunds",
        "https://help.example.com/refunds",
        True,
    )
    assert kb.search("gift wrapping price", k=1)[0].url == ""
    assert front_matter("---\njust: [unclosed\n---\nText") == (
        {},
        "---\njust: [unclosed\n---\nText",
    )


def test_answers_may_link_to_the_web_sources_and_the_persona_hosts(
    site: tuple[Site, str], tmp_path: Path
) -> None:
    from assistant.wiring import Components
    from assistant_core.settings import Settings
    from tests.fakes import FakeChatModel

    _, base = site
    domain = tmp_path / "domain.yaml"
    domain.write_text("persona:\n  link_hosts: [www.example.com]\n")
    settings = Settings(domain=str(domain), link_hosts="shop.example.com")
    parts = Components(settings, {"embedder": HashingEmbedder(), "chat_model": FakeChatModel()})
    Website(parts.database.session, parts.knowledge, POLICY).ingest(f"{base}/help/returns")
    hosts = parts.assistant.options.allowed_link_hosts
    assert hosts == ("shop.example.com", "www.example.com", "127.0.0.1")
    parts.close()


def test_a_site_robots_now_forbids_is_reported_and_sync_goes_on_with_the_others(
    database: Database, kb: KnowledgeBase, site: tuple[Site, str]
) -> None:
    fixture, base = site
    web = Website(database.session, kb, POLICY)
    web.ingest(f"{base}/help/returns")
    web.ingest(f"{base}/help/shipping")
    fixture.robots = "User-agent: *\nDisallow: /help/returns\n"
    report = web.sync()
    assert f"{base}/help/returns: robots.txt does not allow crawling it" in report.failed
    assert report.sites == 1  # the other site was synced
    assert f"{base}/help/shipping" in _sources(kb)
