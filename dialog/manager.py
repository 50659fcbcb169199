"""The dialog manager: one turn from an incoming message to a stored, cited, streamed answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from assistant.errors import AssistantError
from assistant.llm.protocol import ChatModel
from dialog.events import AnswerFailed, BotUttered, Event, UserUttered
from dialog.guard import check_message
from dialog.messages import Message, Reply, Source
from dialog.prompt import NO_ANSWER, build_messages
from dialog.state import ConversationState
from dialog.store import ConversationStore
from knowledge.base import Hit, KnowledgeBase


@dataclass(frozen=True)
class TurnOptions:
    """Knobs of one turn, from settings."""

    top_k: int = 3
    min_score: float = 0.2
    history_turns: int = 2
    max_new_tokens: int = 160
    temperature: float = 0.0
    max_message_chars: int = 4000


class Turn:
    """A turn in progress: its sources are known at once, its text arrives as you iterate.

    >>> turn = assistant.start(Message("How long does shipping take?"))
    >>> for delta in turn: print(delta, end="")
    >>> turn.reply.sources[0].source
    """

    def __init__(
        self,
        conversation_id: str,
        sources: list[Source],
        deltas: Iterator[str],
        record: "TurnRecorder",
    ) -> None:
        self.conversation_id = conversation_id
        self.sources = sources
        self._deltas = deltas
        self._record = record
        self._parts: list[str] = []
        self._reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        try:
            for delta in self._deltas:
                self._parts.append(delta)
                yield delta
        except BaseException as err:
            self._record.failed(type(err).__name__ + (f": {err}" if str(err) else ""), "".join(self._parts))
            raise
        answer = "".join(self._parts).strip()
        self._record.answered(answer, self.sources)
        self._reply = Reply(self.conversation_id, answer, self.sources)

    @property
    def reply(self) -> Reply:
        """The finished reply; iterates to the end first if nobody has."""
        if self._reply is None:
            for _ in self:
                pass
        assert self._reply is not None
        return self._reply


@dataclass
class TurnRecorder:
    """Persists the end of a turn, whichever way it ends."""

    store: ConversationStore
    conversation_id: str
    channel: str

    def answered(self, text: str, sources: list[Source]) -> None:
        refs = [{"chunk_id": s.chunk_id, "source": s.source, "score": s.score} for s in sources]
        self.store.append(self.conversation_id, [BotUttered(text, refs)], channel=self.channel)

    def failed(self, reason: str, partial: str) -> None:
        self.store.append(self.conversation_id, [AnswerFailed(reason, partial)], channel=self.channel)


class Assistant:
    """Handles messages: guard, retrieve, prompt, generate, persist.

    >>> assistant = Assistant(store, knowledge, model)
    >>> assistant.handle(Message("Can I return a gift?")).answer
    """

    def __init__(
        self,
        store: ConversationStore,
        knowledge: KnowledgeBase,
        model: ChatModel,
        options: TurnOptions | None = None,
    ) -> None:
        self.store = store
        self.knowledge = knowledge
        self.model = model
        self.options = options or TurnOptions()

    def handle(self, message: Message) -> Reply:
        """Run a whole turn and return the reply."""
        return self.start(message).reply

    def start(self, message: Message) -> Turn:
        """Store the user's message, retrieve, and return the turn whose text streams as it is read."""
        opts = self.options
        record = TurnRecorder(self.store, message.conversation_id, message.channel)
        verdict = check_message(message.text, max_chars=opts.max_message_chars)
        if verdict.refusal:
            return Turn(message.conversation_id, [], iter([verdict.refusal]), _Unrecorded())
        history = self.store.events(message.conversation_id, last=4 * opts.history_turns)
        user_event: Event = UserUttered(verdict.text, message.channel, message.delivery_id)
        self.store.append(message.conversation_id, [user_event], channel=message.channel)
        hits = self.knowledge.search(verdict.text, k=opts.top_k, min_score=opts.min_score)
        if not hits:
            return Turn(message.conversation_id, [], iter([NO_ANSWER]), record)
        messages = build_messages(verdict.text, hits, history, history_turns=opts.history_turns)
        deltas = self.model.stream(messages, max_tokens=opts.max_new_tokens, temperature=opts.temperature)
        return Turn(message.conversation_id, [_source(h) for h in hits], deltas, record)

    def history(self, conversation_id: str) -> list[Event]:
        return self.store.events(conversation_id)

    def state(self, conversation_id: str) -> ConversationState:
        """The conversation's state, replayed from its events."""
        return ConversationState.replay(conversation_id, self.store.events(conversation_id))


class _Unrecorded(TurnRecorder):
    """A refusal is shown to the user but leaves the conversation untouched."""

    def __init__(self) -> None:
        pass

    def answered(self, text: str, sources: list[Source]) -> None:
        return None

    def failed(self, reason: str, partial: str) -> None:
        return None


def _source(hit: Hit) -> Source:
    return Source(source=hit.source, chunk_id=hit.chunk_id, score=hit.score, text=hit.text, title=hit.title)


__all__ = ["Assistant", "AssistantError", "Turn", "TurnOptions"]
