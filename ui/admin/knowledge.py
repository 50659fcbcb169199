"""The Knowledge tab: what the knowledge base holds, uploads into it, removal from it; each an
admin action through the channel, recorded in the audit trail."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from knowledge.base import DocumentInfo
from ui.access import Action
from ui.admin.desk import AdminDesk, admin_caller
from ui.channel import AccessDenied, failure_for
from ui.web import upload_folder

DOCUMENT_COLUMNS = ["source", "title", "kind", "passages", "ingested"]


class KnowledgeAdmin:
    """Handlers of the Knowledge tab.

    >>> knowledge = KnowledgeAdmin(AdminDesk(runtime))
    >>> report, status, _ = knowledge.upload(["/tmp/gradio/…/warranty.md"], request)
    """

    def __init__(self, desk: AdminDesk) -> None:
        self.desk = desk

    @property
    def upload_dir(self) -> Path:
        return upload_folder(self.desk.runtime.settings)

    def status(self, request: gr.Request | None = None) -> str:
        """Documents and passages in the knowledge base (empty for a caller who may not see it)."""
        try:
            self.desk.channel.authorize(admin_caller(request), Action.KB_STATUS, None)
        except AccessDenied:
            return ""
        documents, chunks = self.desk.components.knowledge.count()
        return f"**Knowledge base:** {documents} documents, {chunks} passages."

    def documents(self) -> list[DocumentInfo]:
        return self.desk.components.knowledge.documents()

    def listing(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """The status line, the documents table and the removal choices, as the tab shows them."""
        documents = self.documents()
        rows = [
            [d.source, d.title, d.kind, d.chunks, d.ingested_at.strftime("%Y-%m-%d %H:%M")]
            for d in documents
        ]
        choices = gr.Dropdown(choices=[d.source for d in documents], value=[])
        return self.status(request), rows, choices

    def upload(
        self, files: list[str] | None, request: gr.Request | None = None
    ) -> tuple[str, str, None]:
        """Copy uploads into the upload folder's `documents/` and ingest them."""
        caller = admin_caller(request)
        try:
            self.desk.channel.authorize(caller, Action.UPLOAD, None)
        except AccessDenied as err:
            return failure_for(err).sentence, "", None
        if not files:
            return "Choose one or more files first.", self.status(request), None
        saved, refused = self._save(files)
        report = self.desk.components.knowledge.ingest(saved)
        report.failed[:0] = refused
        summary = (
            f"Added {report.files - report.unchanged} file(s), {report.chunks} passage(s); "
            f"{report.unchanged} unchanged: " + ", ".join(f"`{p.name}`" for p in saved)
        )
        lines = [summary, *(f"- skipped: {failure}" for failure in report.failed)]
        names = ", ".join(p.name for p in saved) or "(none)"
        self.desk.record(caller, Action.UPLOAD, names, "\n".join(lines))
        return "\n".join(lines), self.status(request), None

    def _save(self, files: list[str]) -> tuple[list[Path], list[str]]:
        """Uploaded files copied under safe names; others refused with why."""
        target = self.upload_dir / "documents"
        target.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        refused: list[str] = []
        limit = self.desk.runtime.settings.max_document_bytes
        for name in files:
            source = Path(name)
            if not _is_uploaded(source):
                refused.append(f"{source.name}: not an uploaded file")
            elif source.stat().st_size > limit:
                refused.append(f"{source.name}: larger than the {limit // 1_000_000} MB limit")
            else:
                destination = target / _safe_name(source.name)
                shutil.copyfile(source, destination)
                saved.append(destination)
        return saved, refused

    def remove(self, sources: list[str] | None, request: gr.Request | None = None) -> str:
        """Forget the chosen documents (their passages leave the index); recorded."""
        caller = admin_caller(request)
        if not sources:
            return "Choose the documents to remove first."
        try:
            self.desk.channel.authorize(caller, Action.REMOVE_DOCUMENTS, None)
        except AccessDenied as err:
            return failure_for(err).sentence
        removed = self.desk.components.knowledge.forget(sources)
        self.desk.record(caller, Action.REMOVE_DOCUMENTS, ", ".join(removed), "")
        if not removed:
            return "Nothing was removed: those documents are gone already."
        return "Removed: " + ", ".join(f"`{source}`" for source in removed)


def _is_uploaded(path: Path) -> bool:
    """Only files Gradio received may be ingested: a crafted payload naming /tmp/x or ~/.ssh is
    refused."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()).resolve()
    resolved = path.resolve()
    return resolved.is_file() and resolved.is_relative_to(folder)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return cleaned or "document.txt"


__all__ = ["DOCUMENT_COLUMNS", "KnowledgeAdmin"]
