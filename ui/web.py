"""The Gradio web chat at `/`: streamed answers with their sources, the conversation's state, an
admin tab."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from assistant.core.errors import ConfigError  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402
from dialog.errors import ConversationNotFound  # noqa: E402
from dialog.messages import Message, new_conversation_id  # noqa: E402
from dialog.persona import Persona  # noqa: E402
from knowledge.loaders import SUPPORTED_SUFFIXES  # noqa: E402
from ui.channel import (  # noqa: E402
    AccessDenied,
    Action,
    Caller,
    Delta,
    Done,
    Failed,
    answer_seq,
    failure_for,
    web_caller,
)
from ui.channel.citations import answer_markdown, citations_markdown  # noqa: E402
from ui.channel.failures import KNOWN  # noqa: E402
from ui.runtime import Runtime  # noqa: E402
from ui.views import jsonable, state_json  # noqa: E402

History = list[dict[str, Any]]
HANDED_OFF = "_Handed off: a person from our team will reply here._"


def upload_types() -> list[str]:
    """The file types the knowledge base can read."""
    return sorted(SUPPORTED_SUFFIXES)


def upload_folder(settings: Settings) -> Path:
    """Where uploads go (and the only folder served); Settings fills it in from the data dir."""
    assert settings.upload_dir is not None, "set by Settings' validator"
    return Path(settings.upload_dir)


def caller_of(request: gr.Request | None) -> Caller:
    """Who is on the page: the login's user when the chat has one (issue 17 binds browsers)."""
    return web_caller(getattr(request, "username", None) if request is not None else None)


def parse_auth(value: str) -> list[tuple[str, str]]:
    """`user:password[,user2:password2]` into Gradio's list of pairs."""
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError("ASSISTANT_AUTH: expected user:password[,user:password…]")
        pairs.append((user, password))
    return pairs


class WebChat:
    """The handlers behind the page, kept apart from the layout so they read as plain functions;
    every one goes through the runtime's channel with the page's caller."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.channel = runtime.channel

    @property
    def persona(self) -> Persona:
        """The company's texts for the page (the domain file's persona; neutral without one)."""
        persona = getattr(self.runtime.components, "persona", None)
        return persona if isinstance(persona, Persona) else Persona()

    def respond(
        self,
        text: str,
        history: History,
        conversation_id: str,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat (the turn runs on a turn thread), then show its sources
        under it and refresh the state panel."""
        if not text.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        caller = caller_of(request)
        conversation_id = conversation_id or new_conversation_id()
        history = [
            *history,
            {"role": "user", "content": text},
            {"role": "assistant", "content": "…"},
        ]
        yield "", history, conversation_id, _id_markdown(conversation_id), gr.skip()
        parts: list[str] = []
        message = Message(text, conversation_id, channel="web")
        for event in self.channel.stream_from_worker(caller, message):
            if isinstance(event, Delta):
                parts.append(event.text)
                history[-1] = {"role": "assistant", "content": "".join(parts)}
                yield gr.skip(), history, gr.skip(), gr.skip(), gr.skip()
            elif isinstance(event, Done):
                answer = event.reply.answer or HANDED_OFF
                content = answer_markdown(answer, event.reply.sources)
                history[-1] = {"role": "assistant", "content": content}
            elif isinstance(event, Failed):  # stored as answer_failed; the page stays usable
                history[-1] = {"role": "assistant", "content": f"Sorry, {event.failure.message}."}
        yield gr.skip(), history, gr.skip(), gr.skip(), self.state_markdown(conversation_id, caller)

    def state_markdown(self, conversation_id: str, caller: Caller | None = None) -> str:
        """Slots with where each came from, handoff status, the last answer's sources."""
        if not conversation_id:
            return "_No conversation yet._"
        state = state_json(self.channel.state(caller or caller_of(None), conversation_id))
        lines = [f"- **Turns:** {state.get('turns', 0)}"]
        if state.get("handoff"):
            reason = state.get("handoff_reason") or ""
            lines.append(f"- **Handoff:** with a human{f' ({reason})' if reason else ''}")
        else:
            lines.append("- **Handoff:** no, the assistant is answering")
        slots = state.get("slots") or {}
        if slots:
            lines += [
                "",
                "| slot | value | from | extractor | confidence |",
                "|---|---|---|---|---|",
            ]
            for name, slot in slots.items():
                origin = f"turn {slot.get('turn')}: “{slot.get('span', '')}”"
                lines.append(
                    f"| {name} | {slot.get('value')} | {origin} | {slot.get('extractor', '')} "
                    f"| {slot.get('confidence', '')} |"
                )
        else:
            lines.append("- **Slots:** none yet")
        if sources := state.get("last_sources") or []:
            lines += ["", "**Last answer's sources:**", "", citations_markdown(sources)]
        return "\n".join(lines)

    def hand_back(self, conversation_id: str, request: gr.Request | None = None) -> tuple[str, str]:
        """An agent gives a handed-off conversation back to the assistant."""
        caller = caller_of(request)
        if not conversation_id:
            return self.state_markdown(""), "Nothing to hand back."
        try:
            handed = self.channel.hand_back(caller, conversation_id)
        except KNOWN as err:
            return self.state_markdown(""), failure_for(err).sentence
        note = "The assistant answers again." if handed else "This conversation is not handed off."
        return self.state_markdown(conversation_id, caller), note

    def new_conversation(self) -> tuple[Any, ...]:
        return [], "", _id_markdown(""), self.state_markdown(""), ""

    def resume(self, conversation_id: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Load a conversation's messages by id; an unknown id (or one the caller may not read)
        says so and changes nothing."""
        caller = caller_of(request)
        conversation_id = conversation_id.strip()
        try:
            events = self.channel.history(caller, conversation_id)
        except (ConversationNotFound, AccessDenied):
            gr.Warning(f"No conversation with id {conversation_id!r}.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Unknown conversation id."
        history: History = []
        for event in events:
            payload = event.payload()
            if event.type == "user":
                history.append({"role": "user", "content": payload["text"]})
            elif event.type == "bot":
                content = answer_markdown(payload["text"], payload.get("sources") or [])
                history.append({"role": "assistant", "content": content})
        return (
            history,
            conversation_id,
            _id_markdown(conversation_id),
            self.state_markdown(conversation_id, caller),
            "",
        )

    def feedback(
        self,
        data: gr.LikeData,
        conversation_id: str,
        history: History,
        request: gr.Request | None = None,
    ) -> str:
        """Thumbs up/down go to the dialog manager, which stores them as events."""
        if not conversation_id:
            return "Nothing to rate yet."
        caller = caller_of(request)
        positive = (
            data.liked
            if isinstance(data.liked, bool)
            else str(data.liked).lower() in ("like", "true")
        )
        try:
            events = self.channel.history(caller, conversation_id)
            seq = answer_seq(events, _nth_answer(history, data.index))
            self.channel.feedback(caller, conversation_id, seq, positive)
        except KNOWN as err:
            return failure_for(err).sentence
        return "Thanks for your feedback." if positive else "Thanks, we will use this to improve."

    def knowledge_status(self, request: gr.Request | None = None) -> str:
        try:
            self.channel.authorize(caller_of(request), Action.KB_STATUS, None)
        except AccessDenied:
            return ""
        documents, chunks = self.runtime.components.knowledge.count()
        return f"**Knowledge base:** {documents} documents, {chunks} passages."

    def upload(
        self, files: list[str] | None, request: gr.Request | None = None
    ) -> tuple[str, str, None]:
        """Copy uploads into the upload folder's `documents/` and ingest them."""
        try:
            self.channel.authorize(caller_of(request), Action.UPLOAD, None)
        except AccessDenied as err:
            return failure_for(err).sentence, "", None
        if not files:
            return "Choose one or more files first.", self.knowledge_status(request), None
        target = self.upload_dir / "documents"
        target.mkdir(parents=True, exist_ok=True)
        saved, refused = [], []
        limit = self.runtime.settings.max_document_bytes
        for name in files:
            source = Path(name)
            if not _is_uploaded(source):
                refused.append(f"{source.name}: not an uploaded file")
                continue
            if source.stat().st_size > limit:
                refused.append(f"{source.name}: larger than the {limit // 1_000_000} MB limit")
                continue
            destination = target / _safe_name(source.name)
            shutil.copyfile(source, destination)
            saved.append(destination)
        report = self.runtime.components.knowledge.ingest(saved)
        report.failed[:0] = refused
        lines = [
            f"Added {report.files - report.unchanged} file(s), {report.chunks} passage(s); "
            f"{report.unchanged} unchanged: " + ", ".join(f"`{p.name}`" for p in saved)
        ]
        lines += [f"- skipped: {failure}" for failure in report.failed]
        return "\n".join(lines), self.knowledge_status(request), None

    @property
    def upload_dir(self) -> Path:
        return upload_folder(self.runtime.settings)


def _nth_answer(history: History, index: Any) -> int:
    """Which answer (from 1) a liked message is: the nth assistant message is the nth answer."""
    position = index[0] if isinstance(index, (list, tuple)) else index
    if not isinstance(position, int):
        return 0
    return sum(1 for m in history[: position + 1] if m.get("role") == "assistant")


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


def _id_markdown(conversation_id: str) -> str:
    return f"Conversation `{conversation_id}`" if conversation_id else "New conversation"


def build_blocks(chat: WebChat) -> gr.Blocks:
    """The page: a chat tab with the state panel beside it, an admin tab for the knowledge base."""
    texts = chat.persona.web
    with gr.Blocks(title=texts.title, analytics_enabled=False) as blocks:
        gr.Markdown(f"## {texts.title}\n{texts.intro}")
        conversation = gr.State("")
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label=texts.title, height=520, elem_id="chatbot", buttons=["copy"]
                    )
                    with gr.Row():
                        box = gr.Textbox(
                            placeholder=texts.placeholder,
                            show_label=False,
                            scale=5,
                            elem_id="message",
                            autofocus=True,
                        )
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                    if texts.examples:
                        gr.Examples([[e] for e in texts.examples], inputs=[box], label="Try asking")
                with gr.Column(scale=2):
                    label = gr.Markdown(_id_markdown(""), elem_id="conversation-id")
                    new = gr.Button("New conversation", elem_id="new-conversation")
                    with gr.Row():
                        resume_id = gr.Textbox(
                            label="Resume a conversation",
                            placeholder="conversation id",
                            scale=3,
                            elem_id="resume-id",
                        )
                        resume = gr.Button("Resume", scale=1, elem_id="resume")
                    notice = gr.Markdown(elem_id="notice")
                    gr.Markdown("#### Conversation state")
                    panel = gr.Markdown(chat.state_markdown(""), elem_id="state-panel")
                    give_back = gr.Button(
                        "Hand back to the assistant", size="sm", elem_id="hand-back"
                    )
        with gr.Tab("Admin", id="admin"):
            status = gr.Markdown(elem_id="kb-status")
            files = gr.File(
                label="Upload documents",
                file_count="multiple",
                file_types=upload_types(),
                elem_id="upload",
            )
            add = gr.Button("Add to the knowledge base", variant="primary", elem_id="ingest")
            report = gr.Markdown(elem_id="ingest-report")
        outputs = [box, chatbot, conversation, label, panel]
        box.submit(chat.respond, [box, chatbot, conversation], outputs)
        send.click(chat.respond, [box, chatbot, conversation], outputs)
        new.click(chat.new_conversation, None, [chatbot, conversation, label, panel, notice])
        resume.click(chat.resume, [resume_id], [chatbot, conversation, label, panel, notice])
        chatbot.like(chat.feedback, [conversation, chatbot], notice)
        give_back.click(chat.hand_back, [conversation], [panel, notice])
        add.click(chat.upload, [files], [report, status, files])
        blocks.load(chat.knowledge_status, None, status)
    return blocks


def mount_web_chat(app: FastAPI, runtime: Runtime) -> FastAPI:
    """Mount the chat at `/`. Gradio keeps its uploads in the upload folder, the only files it
    serves."""
    settings = runtime.settings
    upload_dir = upload_folder(settings)
    upload_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)
    auth = parse_auth(settings.auth.get_secret_value()) if settings.auth is not None else None
    theme = gr.themes.Default(
        font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    blocks = build_blocks(WebChat(runtime))
    app.state.web_chat = blocks
    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=auth,
        allowed_paths=[],
        blocked_paths=[str(Path(settings.data_dir).resolve() / "index")],
        max_file_size=settings.max_document_bytes,
        footer_links=["api"],
        ssr_mode=False,
        mcp_server=False,
        theme=theme,
    )


__all__ = ["WebChat", "build_blocks", "jsonable", "mount_web_chat", "parse_auth"]
