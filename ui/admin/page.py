"""The admin area's page: Knowledge, Conversations, Insights and Audit tabs, mounted at `/admin`
behind `ASSISTANT_ADMIN_AUTH` (separate from the customer's login)."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.requests import Request

from ui.admin.audit import AUDIT_COLUMNS, AuditAdmin
from ui.admin.desk import AdminDesk
from ui.admin.insights import GAP_COLUMNS, PERIODS, InsightsAdmin
from ui.admin.knowledge import DOCUMENT_COLUMNS, KnowledgeAdmin
from ui.admin.review import (
    ANY,
    FEEDBACK_CHOICES,
    HANDOFF_CHOICES,
    RESULT_COLUMNS,
    ReviewAdmin,
)
from ui.runtime import Runtime
from ui.views import NO_CONVERSATION
from ui.web import login_check, mount_options, parse_auth, prepare_uploads, upload_types

ADMIN_PATH = "/admin"


def build_admin_blocks(desk: AdminDesk) -> gr.Blocks:
    """The admin page: one tab per job."""
    with gr.Blocks(title="Assistant admin", analytics_enabled=False) as blocks:
        gr.Markdown("## Assistant admin")
        with gr.Tab("Knowledge", id="knowledge"):
            _knowledge_tab(KnowledgeAdmin(desk), blocks)
        with gr.Tab("Conversations", id="conversations"):
            _review_tab(ReviewAdmin(desk), blocks)
        with gr.Tab("Insights", id="insights") as insights_tab:
            _insights_tab(InsightsAdmin(desk), insights_tab)
        with gr.Tab("Audit", id="audit") as audit_tab:
            _audit_tab(AuditAdmin(desk), audit_tab)
    return blocks


def _knowledge_tab(knowledge: KnowledgeAdmin, blocks: gr.Blocks) -> None:
    status = gr.Markdown(elem_id="kb-status")
    files = gr.File(
        label="Upload documents",
        file_count="multiple",
        file_types=upload_types(),
        elem_id="upload",
    )
    add = gr.Button("Add to the knowledge base", variant="primary", elem_id="ingest")
    report = gr.Markdown(elem_id="ingest-report")
    gr.Markdown("#### Documents")
    table = gr.Dataframe(headers=DOCUMENT_COLUMNS, interactive=False, elem_id="documents")
    with gr.Row():
        chosen = gr.Dropdown(
            label="Remove documents", multiselect=True, choices=[], scale=4, elem_id="remove-choice"
        )
        remove = gr.Button("Remove", variant="stop", scale=1, elem_id="remove")
    removed = gr.Markdown(elem_id="remove-report")
    listing = [status, table, chosen]
    add.click(knowledge.upload, [files], [report, status, files]).then(
        knowledge.listing, None, listing
    )
    remove.click(knowledge.remove, [chosen], [removed]).then(knowledge.listing, None, listing)
    blocks.load(knowledge.listing, None, listing)


def _review_tab(review: ReviewAdmin, blocks: gr.Blocks) -> None:
    with gr.Row():
        text = gr.Textbox(label="Text", placeholder="words in a message", elem_id="review-text")
        channel = gr.Dropdown(label="Channel", choices=[ANY], value=ANY, elem_id="review-channel")
        since = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="review-since")
        until = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="review-until")
        feedback = gr.Dropdown(label="Feedback", choices=FEEDBACK_CHOICES, value=ANY)
        handoff = gr.Dropdown(label="Handoff", choices=HANDOFF_CHOICES, value=ANY)
    search = gr.Button("Search", variant="primary", elem_id="review-search")
    count = gr.Markdown(elem_id="review-count")
    results = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, elem_id="review-results")
    with gr.Row():
        chosen = gr.Textbox(label="Conversation id", scale=4, elem_id="review-id")
        open_ = gr.Button("Open", scale=1, elem_id="review-open")
        give_back = gr.Button("Hand back to the assistant", scale=1, elem_id="hand-back")
    notice = gr.Markdown(elem_id="review-notice")
    with gr.Row():
        with gr.Column(scale=3):
            transcript = gr.Markdown(elem_id="transcript")
        with gr.Column(scale=2):
            gr.Markdown("#### Conversation state")
            panel = gr.Markdown(NO_CONVERSATION, elem_id="review-state")
    filters = [text, channel, since, until, feedback, handoff]
    search.click(review.search, filters, [results, count])
    text.submit(review.search, filters, [results, count])
    results.select(review.pick, None, chosen).then(
        review.open, [chosen], [transcript, panel, notice]
    )
    open_.click(review.open, [chosen], [transcript, panel, notice])
    chosen.submit(review.open, [chosen], [transcript, panel, notice])
    give_back.click(review.hand_back, [chosen], [panel, notice])
    blocks.load(review.channels, None, channel)


def _insights_tab(insights: InsightsAdmin, tab: gr.Tab) -> None:
    with gr.Row():
        period = gr.Dropdown(
            label="Period", choices=list(PERIODS), value="30 days", scale=3, elem_id="period"
        )
        with_gaps = gr.Checkbox(
            value=True,
            label="Group the knowledge gaps (loads the embedding model)",
            scale=2,
            elem_id="with-gaps",
        )
        refresh = gr.Button("Build the report", variant="primary", scale=1, elem_id="build-report")
    figures = gr.Markdown(elem_id="figures")
    with gr.Row():
        daily = gr.Plot(label="Per day", format="png", elem_id="daily-plot")
        channels = gr.Plot(label="Per channel", format="png", elem_id="channel-plot")
    gr.Markdown("#### Knowledge gaps: questions answered badly, grouped by meaning")
    gaps = gr.Dataframe(
        headers=GAP_COLUMNS,
        interactive=False,
        wrap=True,
        column_widths=["5%", "10%", "45%", "15%", "25%"],
        elem_id="gaps",
    )
    with gr.Row():
        report_csv = gr.File(label="Report (CSV)", interactive=False, elem_id="report-csv")
        gaps_csv = gr.File(label="Knowledge gaps (CSV)", interactive=False, elem_id="gaps-csv")
    outputs = [figures, daily, channels, gaps, report_csv, gaps_csv]
    refresh.click(insights.show, [period, with_gaps], outputs)
    tab.select(insights.show, [period, with_gaps], outputs)


def _audit_tab(audit: AuditAdmin, tab: gr.Tab) -> None:
    refresh = gr.Button("Refresh", elem_id="audit-refresh")
    table = gr.Dataframe(headers=AUDIT_COLUMNS, interactive=False, wrap=True, elem_id="audit")
    refresh.click(audit.recent, None, table)
    tab.select(audit.recent, None, table)


def mount_admin(app: FastAPI, runtime: Runtime) -> FastAPI:
    """Mount the admin area at `/admin` behind ASSISTANT_ADMIN_AUTH; with it unset, nothing is
    served there. Mount it before the customer's page, whose `/` would take `/admin` too."""
    settings = runtime.settings
    if settings.admin_auth is None:
        return app
    logins = parse_auth(settings.admin_auth.get_secret_value(), "ASSISTANT_ADMIN_AUTH")
    prepare_uploads(settings)
    blocks = build_admin_blocks(AdminDesk(runtime))
    app.state.admin_area = blocks
    app.add_route(ADMIN_PATH, _to_admin_page, methods=["GET"], include_in_schema=False)
    return gr.mount_gradio_app(
        app, blocks, path=ADMIN_PATH, auth=login_check(logins), **mount_options(settings)
    )


async def _to_admin_page(request: Request) -> RedirectResponse:
    """`/admin` itself would fall to the customer's page at `/`: send the browser to `/admin/`."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}{ADMIN_PATH}/", status_code=307)


__all__ = ["ADMIN_PATH", "build_admin_blocks", "mount_admin"]
