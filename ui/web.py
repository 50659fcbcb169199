"""The customer's web chat at `/`: streamed answers with their sources, the conversation's state,
and "Resume" for this browser's own conversations only. No admin control lives here: uploads, the
knowledge base, review and hand back are in the admin area (`ui.admin`, at `/admin`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from assistant_core.settings import Settings  # noqa: E402
from dialog.errors import ConversationNotFound  # noqa: E402
from dialog.messages import Message  # noqa: E402
from dialog.persona import Persona  # noqa: E402
from knowledge.loaders import SUPPORTED_SUFFIXES  # noqa: E402
from ui.access import Action, check_login, parse_logins  # noqa: E402
from ui.access_http import AccessControl  # noqa: E402
from ui.channel import (  # noqa: E402
    AccessDenied,
    Caller,
    Delta,
    Done,
    Failed,
    answer_seq,
    failure_for,
    web_caller,
)
from ui.channel.citations import answer_markdown, escape_markdown, plain_text  # noqa: E402
from ui.channel.failures import KNOWN  # noqa: E402
from ui.runtime import Runtime  # noqa: E402
from ui.views import NO_CONVERSATION, jsonable, state_markdown  # noqa: E402

History = list[dict[str, Any]]
Owned = dict[str, dict[str, str]]
"""The browser's own conversations, kept in its localStorage: id -> token, title, started at."""
HANDED_OFF = "_Handed off: a person from our team will reply here._"
OWN_LIMIT = 20
"""Conversations a browser remembers (the newest); older ones drop out of its "Resume" list."""
BROWSER_KEY = "assistant-conversations"
BROWSER_SECRET = "assistant-web-conversations"
"""Gradio sends the BrowserState secret to the page anyway; a fixed one keeps the list readable
across server restarts. What it guards is checked by the server: each id's conversation token."""


def upload_types() -> list[str]:
    """The file types the knowledge base can read."""
    return sorted(SUPPORTED_SUFFIXES)


def upload_folder(settings: Settings) -> Path:
    """Where uploads go (and the only folder served); Settings fills it in from the data dir."""
    assert settings.upload_dir is not None, "set by Settings' validator"
    return Path(settings.upload_dir)


def caller_of(request: gr.Request | None) -> Caller:
    """Who is on the page: the customer login's user when the chat has one."""
    return web_caller(getattr(request, "username", None) if request is not None else None)


def parse_auth(value: str, setting: str = "ASSISTANT_AUTH") -> list[tuple[str, str]]:
    """`user:password[,user2:password2]` into pairs; a malformed value names its setting."""
    return parse_logins(value, setting)


def login_check(pairs: list[tuple[str, str]]) -> Callable[[str, str], bool]:
    """Gradio's `auth` as a constant-time comparison against the configured logins."""
    return lambda user, password: check_login(pairs, user, password)


class WebChat:
    """The handlers behind the customer's page, kept apart from the layout so they read as plain
    functions; every one goes through the runtime's channel with the page's caller, carrying the
    conversation's token so the access policy sees the browser that owns it."""

    def __init__(self, runtime: Runtime, access: AccessControl | None = None) -> None:
        self.runtime = runtime
        self.channel = runtime.channel
        self._access = access

    @cached_property
    def access(self) -> AccessControl:
        """Binds new conversations to this browser (ids and tokens live in the database)."""
        return self._access or AccessControl(self.runtime.components.database.session)

    @property
    def persona(self) -> Persona:
        """The company's texts for the page (the domain file's persona; neutral without one)."""
        persona = getattr(self.runtime.components, "persona", None)
        return persona if isinstance(persona, Persona) else Persona()

    def greeting(self) -> History:
        """A new, empty conversation's chat: the persona's greeting as the assistant's first
        message, shown as the terminal prints it (verbatim, not stored as an event); empty when the
        persona's greeting is."""
        text = greeting_markdown(self.persona.greeting)
        return [{"role": "assistant", "content": text}] if text else []

    def respond(
        self,
        text: str,
        history: History,
        conversation_id: str,
        token: str = "",
        owned: Owned | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat (the turn runs on a turn thread), then show its sources
        under it and refresh the state panel. A first message opens a conversation bound to this
        browser, remembered in its list."""
        if not text.strip():
            yield _skips(8)
            return
        caller = caller_of(request)
        remembered: Owned | None = None
        if not conversation_id:
            try:
                opening = self.access.open(caller, "web", None, Action.STREAM)
            except KNOWN as err:  # the database away: say so, keep the page usable
                yield "", [*history, *_exchange(text, failure_for(err).message)], *_skips(6)
                return
            if not opening.decision.allowed:
                yield "", [*history, *_exchange(text, "this chat needs a login")], *_skips(6)
                return
            conversation_id, token = opening.conversation_id, opening.token or ""
            remembered = remember(owned or {}, conversation_id, token, text)
        history = [*history, {"role": "user", "content": text}]
        history.append({"role": "assistant", "content": "…"})
        kept = (remembered, own_dropdown(remembered)) if remembered is not None else _skips(2)
        label = _id_markdown(conversation_id)
        yield "", history, conversation_id, label, gr.skip(), token, *kept
        caller = caller.with_token(token or None)
        for content, final in self._answer(caller, Message(text, conversation_id, channel="web")):
            history[-1] = {"role": "assistant", "content": content}
            if not final:  # the final text comes with the state panel, below
                yield gr.skip(), history, *_skips(6)
        try:
            panel: Any = self.state_markdown(conversation_id, caller)
        except KNOWN:  # the answer is shown; the panel catches up with the next one
            panel = gr.skip()
        yield gr.skip(), history, gr.skip(), gr.skip(), panel, gr.skip(), gr.skip(), gr.skip()

    def _answer(self, caller: Caller, message: Message) -> Iterator[tuple[str, bool]]:
        """The answer's text as it grows, then (final) with its sources, or the failure."""
        parts: list[str] = []
        for event in self.channel.stream_from_worker(caller, message):
            if isinstance(event, Delta):
                parts.append(event.text)
                yield "".join(parts), False
            elif isinstance(event, Done):
                yield answer_markdown(event.reply.answer or HANDED_OFF, event.reply.sources), True
            elif isinstance(event, Failed):  # stored as answer_failed; the page stays usable
                yield f"Sorry, {event.failure.message}.", True

    def state_markdown(self, conversation_id: str, caller: Caller | None = None) -> str:
        """Slots with where each came from, handoff status, the last answer's sources."""
        if not conversation_id:
            return NO_CONVERSATION
        return state_markdown(self.channel.state(caller or caller_of(None), conversation_id))

    def new_conversation(self) -> tuple[Any, ...]:
        """An empty chat (but for the greeting); the next message opens a new conversation."""
        return self.greeting(), "", _id_markdown(""), NO_CONVERSATION, "", ""

    def own_conversations(self, owned: Owned | None) -> Any:
        """The "Resume" list as the page loads: this browser's conversations, newest first."""
        return own_dropdown(owned or {})

    def resume(
        self,
        conversation_id: str | None,
        owned: Owned | None = None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """Load one of this browser's conversations, with the token it was given at the start.
        From the page only ids in the browser's own list are taken (`owned`); the channel's policy
        checks the token, so an id copied from elsewhere reads as unknown."""
        conversation_id = (conversation_id or "").strip()
        entry = (owned or {}).get(conversation_id)
        unknown = (*_skips(4), "Choose one of your conversations.", gr.skip())
        if not conversation_id or (owned is not None and entry is None):
            return unknown
        token = entry.get("token") if entry else None
        caller = caller_of(request).with_token(token or None)
        try:
            events = self.channel.history(caller, conversation_id)
        except (ConversationNotFound, AccessDenied):
            return unknown[:4] + ("That conversation is no longer available.", gr.skip())
        history: History = []
        for event in events:
            payload = event.payload()
            if event.type == "user":
                history.append({"role": "user", "content": payload["text"]})
            elif event.type == "bot":
                content = answer_markdown(payload["text"], payload.get("sources") or [])
                history.append({"role": "assistant", "content": content})
        panel = self.state_markdown(conversation_id, caller)
        label = _id_markdown(conversation_id)
        return history, conversation_id, label, panel, "", token or ""

    def feedback(
        self,
        data: gr.LikeData,
        conversation_id: str,
        history: History,
        token: str = "",
        request: gr.Request | None = None,
    ) -> str:
        """Thumbs up/down go to the dialog manager, which stores them as events."""
        if not conversation_id:
            return "Nothing to rate yet."
        caller = caller_of(request).with_token(token or None)
        positive = (
            data.liked
            if isinstance(data.liked, bool)
            else str(data.liked).lower() in ("like", "true")
        )
        nth = _nth_answer(history, data.index)
        if nth == 0:  # the greeting: shown, never stored, so nothing to rate
            return "Only answers can be rated."
        try:
            events = self.channel.history(caller, conversation_id)
            seq = answer_seq(events, nth)
            self.channel.feedback(caller, conversation_id, seq, positive)
        except KNOWN as err:
            return failure_for(err).sentence
        return "Thanks for your feedback." if positive else "Thanks, we will use this to improve."


def remember(owned: Mapping[str, Any], conversation_id: str, token: str, title: str) -> Owned:
    """The browser's list with a new conversation added (its newest OWN_LIMIT kept)."""
    entry = {"token": token, "title": title.strip()[:60], "at": datetime.now(UTC).isoformat()}
    kept = {cid: dict(e) for cid, e in owned.items() if isinstance(e, dict)}
    kept[conversation_id] = entry
    newest = sorted(kept.items(), key=lambda item: str(item[1].get("at", "")), reverse=True)
    return dict(newest[:OWN_LIMIT])


def own_dropdown(owned: Mapping[str, Any]) -> Any:
    """The dropdown's choices: each conversation by its first question and day, newest first."""
    entries = sorted(owned.items(), key=lambda item: str(item[1].get("at", "")), reverse=True)
    choices = [
        (f"{e.get('title') or cid} ({str(e.get('at', ''))[:10]})", cid) for cid, e in entries
    ]
    return gr.Dropdown(choices=choices, value=None)


def greeting_markdown(greeting: str) -> str:
    """The persona's greeting as the chat shows it: inert (no control characters or bidi
    overrides) and its Markdown escaped, so it reads as written; "" for a blank greeting."""
    return escape_markdown(plain_text(greeting).strip())


def _exchange(text: str, failure: str) -> History:
    """A message and the sentence saying why it got no answer."""
    answer = {"role": "assistant", "content": f"Sorry, {failure}."}
    return [{"role": "user", "content": text}, answer]


def _skips(n: int) -> tuple[Any, ...]:
    """`n` outputs left as they are."""
    return tuple(gr.skip() for _ in range(n))


def _nth_answer(history: History, index: Any) -> int:
    """Which answer (from 1) a liked message is: the nth assistant message after the first question
    is the nth answer (the greeting before it is none); 0: not an answer."""
    position = index[0] if isinstance(index, (list, tuple)) else index
    if not isinstance(position, int):
        return 0
    roles = [message.get("role") for message in history[: position + 1]]
    return roles[roles.index("user") :].count("assistant") if "user" in roles else 0


def _id_markdown(conversation_id: str) -> str:
    return f"Conversation `{conversation_id}`" if conversation_id else "New conversation"


def build_blocks(chat: WebChat) -> gr.Blocks:
    """The customer's page: the chat with the state panel beside it; nothing an admin does."""
    texts = chat.persona.web
    greeting: list[Any] = chat.greeting()  # Gradio's messages format: role and content
    with gr.Blocks(title=texts.title, analytics_enabled=False) as blocks:
        gr.Markdown(f"## {texts.title}\n{texts.intro}")
        conversation, token = gr.State(""), gr.State("")
        owned = gr.BrowserState({}, storage_key=BROWSER_KEY, secret=BROWSER_SECRET)
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    greeting,
                    label=texts.title,
                    height=520,
                    elem_id="chatbot",
                    buttons=["copy"],
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
                    mine = gr.Dropdown(
                        label="Your conversations", choices=[], scale=3, elem_id="own-conversations"
                    )
                    resume = gr.Button("Resume", scale=1, elem_id="resume")
                notice = gr.Markdown(elem_id="notice")
                gr.Markdown("#### Conversation state")
                panel = gr.Markdown(NO_CONVERSATION, elem_id="state-panel")
        inputs = [box, chatbot, conversation, token, owned]
        outputs = [box, chatbot, conversation, label, panel, token, owned, mine]
        box.submit(chat.respond, inputs, outputs)
        send.click(chat.respond, inputs, outputs)
        new.click(chat.new_conversation, None, [chatbot, conversation, label, panel, notice, token])
        resume.click(
            chat.resume, [mine, owned], [chatbot, conversation, label, panel, notice, token]
        )
        chatbot.like(chat.feedback, [conversation, chatbot, token], notice)
        blocks.load(chat.own_conversations, [owned], [mine])
    return blocks


def prepare_uploads(settings: Settings) -> Path:
    """Gradio keeps its uploads in the upload folder, the only files it serves (both pages)."""
    folder = upload_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def mount_options(settings: Settings) -> dict[str, Any]:
    """What both pages are mounted with: no extra files served, the index folder blocked."""
    return {
        "allowed_paths": [],
        "blocked_paths": [str(Path(settings.data_dir).resolve() / "index")],
        "max_file_size": settings.max_document_bytes,
        "footer_links": ["api"],
        "ssr_mode": False,
        "mcp_server": False,
        "theme": gr.themes.Default(
            font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
        ),
    }


def mount_web_chat(app: FastAPI, runtime: Runtime) -> FastAPI:
    """Mount the customer's chat at `/`, behind the optional customer login (ASSISTANT_AUTH).
    Mount it last: `/` takes every path no earlier route took."""
    settings = runtime.settings
    prepare_uploads(settings)
    logins = parse_auth(settings.auth.get_secret_value()) if settings.auth is not None else None
    blocks = build_blocks(WebChat(runtime, getattr(app.state, "access", None)))
    app.state.web_chat = blocks
    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=login_check(logins) if logins else None,
        **mount_options(settings),
    )


__all__ = [
    "WebChat",
    "build_blocks",
    "greeting_markdown",
    "jsonable",
    "login_check",
    "mount_options",
    "mount_web_chat",
    "parse_auth",
    "prepare_uploads",
    "upload_folder",
    "upload_types",
]
