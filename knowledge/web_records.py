"""SQL rows of website sources: each site given to `assistant ingest URL`, and each page fetched
from it with what a conditional request needs next time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant_core.db import Base


class WebSiteRow(Base):
    """A crawl root (a start URL, or a sitemap): `kb sync` re-crawls each one."""

    __tablename__ = "web_sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    start_url: Mapped[str] = mapped_column(String(2048), unique=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebPageRow(Base):
    """A page of a site as last fetched: validators for conditional requests, its links (so an
    unchanged page still leads the crawl on), whether it is in the knowledge base."""

    __tablename__ = "web_pages"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("web_sites.id", ondelete="CASCADE"), index=True)
    etag: Mapped[str] = mapped_column(String(512), default="")
    last_modified: Mapped[str] = mapped_column(String(64), default="")
    links: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the in-scope URLs the page linked to."""
    indexed: Mapped[bool] = mapped_column(default=False)
    """False for a page that had no text (a link hub): it has no document to remove."""
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
