"""Citations are links wherever a source has a URL: the web chat's Markdown, the terminal's and
`ask`'s plain headings, the Chatwoot reply; a URL that could break out of the link is dropped."""

from __future__ import annotations

import pytest

from dialog.messages import Reply, Source
from ui.channel.citations import citations_markdown, citations_plain
from ui.webhooks.chatwoot import reply_text

pytestmark = pytest.mark.unit

PAGE = Source(
    "https://help.example.com/returns",
    7,
    0.8,
    "Return unworn clothes within thirty days.",
    "Returns [policy]",
    quote="Return unworn clothes within thirty days.",
    url="https://help.example.com/returns",
)
FILE = Source("/srv/docs/shipping.md", 3, 0.7, "Parcels ship in three days.", "Shipping")


def test_markdown_links_the_title_to_the_page() -> None:
    listed = citations_markdown([PAGE, FILE])
    assert "[1] [Returns \\[policy\\]](<https://help.example.com/returns>)" in listed
    assert "[2] Shipping — `shipping.md`" in listed


def test_plain_headings_show_the_url_instead_of_a_path() -> None:
    (page, _), (local, _) = citations_plain([PAGE, FILE])
    assert page.strip() == "[1] Returns [policy] — https://help.example.com/returns"
    assert local.strip() == "[2] Shipping — /srv/docs/shipping.md"


def test_stored_refs_with_a_url_link_too_and_unsafe_urls_do_not() -> None:
    stored = {"source": "https://a.example/x", "chunk_id": 1, "url": "https://a.example/x"}
    assert "](<https://a.example/x>)" in citations_markdown([stored])
    for bad in ("javascript:alert(1)", "https://a.example/x> [y](https://evil.example", ""):
        assert "](<" not in citations_markdown([{**stored, "url": bad}])


def test_the_chatwoot_reply_names_the_page_url() -> None:
    text = reply_text(Reply("c1", "Within thirty days.", [PAGE, FILE]))
    assert "Returns [policy] (https://help.example.com/returns); Shipping" in text
