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
from dialog.messages import Message, new_conversation_id  # noqa: E402
from ui.runtime import Runtime  # noqa: E402
from ui.views import (  # noqa: E402
    jsonable,
    quote_markdown,
    refs_markdown,
    sources_markdown,
    state_json,
)


def upload_types() -> list[str]:
    """The file types the knowledge base can read."""
    try:
        from knowledge.loaders import SUPPORTED_SUFFIXES
    except ImportError:  # an older knowledge package
        return [".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".pdf"]
    return sorted(SUPPORTED_SUFFIXES)


History = list[dict[str, Any]]


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
    """The handlers behind the page, kept apart from the layout so they read as plain functions."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def assistant(self) -> Any:
        return self.runtime.assistant

    def respond(
        self, text: str, history: History, conversation_id: str
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat, then show its sources under it and refresh the state
        panel."""
        if not text.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        conversation_id = conversation_id or new_conversation_id()
        history = [
            *history,
            {"role": "user", "content": text},
            {"role": "assistant", "content": "…"},
        ]
        yield "", history, conversation_id, _id_markdown(conversation_id), gr.skip()
        turn = self.assistant.start(Message(text, conversation_id, channel="web"))
        self.runtime.metrics.inc("assistant_turns_total", channel="web")
        parts: list[str] = []
        deltas = iter(turn)
        try:
            for delta in deltas:
                parts.append(delta)
                history[-1] = {"role": "assistant", "content": "".join(parts)}
                yield gr.skip(), history, gr.skip(), gr.skip(), gr.skip()
            reply = turn.reply
            answer = reply.answer or "_Handed off: a person from our team will reply here._"
            history[-1] = {"role": "assistant", "content": _with_sources(answer, reply.sources)}
        except Exception as err:  # stored as answer_failed by the turn; the page stays usable
            history[-1] = {
                "role": "assistant",
                "content": f"Sorry, the answer failed ({type(err).__name__}). Please try again.",
            }
        finally:  # the page went away mid-answer: recorded as failed, the conversation unlocked
            deltas.close()
        yield gr.skip(), history, gr.skip(), gr.skip(), self.state_markdown(conversation_id)

    def state_markdown(self, conversation_id: str) -> str:
        """Slots with where each came from, handoff status, the last answer's sources."""
        if not conversation_id:
            return "_No conversation yet._"
        state = state_json(self.assistant.state(conversation_id))
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
        sources = state.get("last_sources") or []
        if sources:
            lines += ["", "**Last answer's sources:**"]
            for source in sources:
                lines.append(
                    f"- `{Path(str(source.get('source'))).name}` (chunk {source.get('chunk_id')})"
                )
                if quote := quote_markdown(str(source.get("quote") or "")):
                    lines += ["", *(f"  {line}" for line in quote.split("\n")), ""]
        return "\n".join(lines)

    def hand_back(self, conversation_id: str) -> tuple[str, str]:
        """An agent gives a handed-off conversation back to the assistant."""
        hand_back = getattr(self.assistant, "hand_back", None)
        if not conversation_id or hand_back is None:
            return self.state_markdown(conversation_id), "Nothing to hand back."
        handed = hand_back(conversation_id)
        note = "The assistant answers again." if handed else "This conversation is not handed off."
        return self.state_markdown(conversation_id), note

    def new_conversation(self) -> tuple[Any, ...]:
        return [], "", _id_markdown(""), self.state_markdown(""), ""

    def resume(self, conversation_id: str) -> tuple[Any, ...]:
        """Load a conversation's messages by id; an unknown id says so and changes nothing."""
        conversation_id = conversation_id.strip()
        if not conversation_id or not self.runtime.components.store.exists(conversation_id):
            gr.Warning(f"No conversation with id {conversation_id!r}.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Unknown conversation id."
        history: History = []
        for event in self.assistant.history(conversation_id):
            payload = event.payload()
            if event.type == "user":
                history.append({"role": "user", "content": payload["text"]})
            elif event.type == "bot":
                listed = refs_markdown(payload.get("sources") or [])
                sources = f"\n\n**Sources**\n\n{listed}" if listed else ""
                history.append({"role": "assistant", "content": payload["text"] + sources})
        return (
            history,
            conversation_id,
            _id_markdown(conversation_id),
            self.state_markdown(conversation_id),
            "",
        )

    def feedback(self, data: gr.LikeData, conversation_id: str, history: History) -> str:
        """Thumbs up/down go to the dialog manager, which stores them as events."""
        record = getattr(self.assistant, "feedback", None)
        if record is None or not conversation_id:
            return "Feedback is not recorded by this version."
        positive = (
            data.liked
            if isinstance(data.liked, bool)
            else str(data.liked).lower() in ("like", "true")
        )
        record(conversation_id, self._answer_seq(conversation_id, history, data.index), positive)
        return "Thanks for your feedback." if positive else "Thanks, we will use this to improve."

    def _answer_seq(self, conversation_id: str, history: History, index: Any) -> int | None:
        """The seq of the liked answer: the nth assistant message is the nth stored answer."""
        position = index[0] if isinstance(index, (list, tuple)) else index
        numbered = getattr(self.runtime.components.store, "numbered_events", None)
        if not isinstance(position, int) or numbered is None:
            return None
        nth = sum(1 for m in history[: position + 1] if m.get("role") == "assistant")
        answers = [seq for seq, event in numbered(conversation_id) if event.type == "bot"]
        return answers[nth - 1] if 0 < nth <= len(answers) else None

    def knowledge_status(self) -> str:
        documents, chunks = self.runtime.components.knowledge.count()
        return f"**Knowledge base:** {documents} documents, {chunks} passages."

    def upload(self, files: list[str] | None) -> tuple[str, str, None]:
        """Copy uploads into the upload folder's `documents/` and ingest them."""
        if not files:
            return "Choose one or more files first.", self.knowledge_status(), None
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
        return "\n".join(lines), self.knowledge_status(), None

    @property
    def upload_dir(self) -> Path:
        return Path(self.runtime.settings.upload_dir)


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


def _with_sources(answer: str, sources: list[Any]) -> str:
    listed = sources_markdown(sources)
    return f"{answer}\n\n**Sources**\n\n{listed}" if listed else answer


def build_blocks(chat: WebChat) -> gr.Blocks:
    """The page: a chat tab with the state panel beside it, an admin tab for the knowledge base."""
    with gr.Blocks(title="Support assistant", analytics_enabled=False) as blocks:
        gr.Markdown(
            "## Support assistant\n"
            "Answers come from the knowledge base, with the passages they used."
        )
        conversation = gr.State("")
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Support assistant", height=520, elem_id="chatbot", buttons=["copy"]
                    )
                    with gr.Row():
                        box = gr.Textbox(
                            placeholder="Ask about shipping, returns, your order…",
                            show_label=False,
                            scale=5,
                            elem_id="message",
                            autofocus=True,
                        )
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
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
    upload_dir = Path(settings.upload_dir)
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
