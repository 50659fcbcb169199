"""A turn in progress, as a front end reads it: sources at once, text as it streams, then the
stored reply."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from assistant_core.errors import LLMError
from dialog.messages import Grounding, Reply, Source

Settled = tuple[str, list[Source], Grounding]
"""A streamed answer as it is finally stored: its text, its sources (with quotes), the check."""


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
        finish: Callable[[str], None] | None = None,
        fail: Callable[[str, str], None] | None = None,
        *,
        handoff: bool = False,
        release: Callable[[], None] | None = None,
        recover: Callable[[LLMError], str] | None = None,
        settle: Callable[[str], Settled] | None = None,
        grounding: Grounding | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.sources = sources
        self.handoff = handoff
        self.grounding = grounding or Grounding()
        self._settle = settle
        self._deltas = deltas
        self._finish = finish
        self._fail = fail
        self._release = release
        self._recover = recover
        self._failed = False
        self._parts: list[str] = []
        self._reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        try:
            try:
                for delta in self._deltas:
                    self._parts.append(delta)
                    yield delta
                answer = "".join(self._parts).strip()
                if self._settle is not None:
                    answer, self.sources, self.grounding = self._settle(answer)
            except LLMError as err:
                if self._recover is None:
                    raise
                partial = "".join(self._parts)
                self._record_failure(err, partial)
                answer = self._recover(err)
                yield ("\n\n" if partial.strip() else "") + answer
            if self._finish:
                self._finish(answer)
            self._reply = Reply(
                self.conversation_id, answer, self.sources, self.handoff, self.grounding
            )
        except BaseException as err:
            if self._reply is None:
                self._record_failure(err, "".join(self._parts))
            raise
        finally:
            self.close()

    def _record_failure(self, err: BaseException, partial: str) -> None:
        """Mark the unfinished answer failed, once; it is never stored as an answer."""
        if self._fail and not self._failed:
            self._failed = True
            self._fail(type(err).__name__ + (f": {err}" if str(err) else ""), partial)

    def close(self) -> None:
        """Release the conversation's lock (iterating to the end does it; so does dropping the
        turn)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    @property
    def reply(self) -> Reply:
        """The finished reply; iterates to the end first if nobody has."""
        if self._reply is None:
            for _ in self:
                pass
        assert self._reply is not None
        return self._reply
