"""The one webhook delivery sequence, whatever sent it: leased job -> turn -> send -> finish.

A generic webhook with a callback and the Chatwoot bot differ only in how a job becomes a
`Message` and how its reply is sent (a `Sender`). The reply is kept on the job before anything is
sent, with each sending step marked when it is done, so a retry after a crash or a failed POST
re-sends what was answered and never runs the turn again; the dialog manager answers a delivery id
it has seen with the answer it stored (dialog/redelivery.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from assistant_core.settings import parse_durations
from dialog.messages import Grounding, Message, Reply, Source
from ui.jobs import DeliveryQueue, Job
from ui.runtime import Runtime

log = logging.getLogger(__name__)


class SendError(Exception):
    """Sending a reply failed; `permanent` when trying again cannot help (the receiver said no)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    """What differs between webhook sources: the message a job carries and how its reply goes."""

    source: str

    def message(self, job: Job) -> Message:
        """The customer's message the job carries."""
        ...

    async def before_turn(self, runtime: Runtime, queue: DeliveryQueue, job: Job) -> None:
        """Anything the turn depends on (Chatwoot: hand a resolved conversation back)."""
        ...

    def steps(self, job: Job, reply: Reply) -> list[str]:
        """The sending steps the reply needs, each retried until it is done."""
        ...

    async def send(self, runtime: Runtime, job: Job, reply: Reply, step: str) -> None:
        """One sending step; raises SendError."""
        ...

    def done_status(self, job: Job, reply: Reply) -> str:
        """The delivery's status once every step is done."""
        ...


@dataclass(frozen=True)
class Outcome:
    """How one run of a delivery ended: its status, and the reply when there is one."""

    status: str
    reply: Reply | None = None


async def run_delivery(
    runtime: Runtime,
    queue: DeliveryQueue,
    job: Job,
    sender: Sender,
    *,
    inline: bool = False,
) -> Outcome:
    """Run the leased job to its end or its next try; `inline` (an HTTP request waits for the
    answer) raises a failed turn and forgets the job, so the sender's retry starts afresh."""
    lease = Lease(queue, job, runtime.settings.delivery_lease_s, job.leased_at)
    heartbeat = asyncio.get_running_loop().create_task(_renew(lease), name=f"lease {job.id}")
    try:
        answer = job.answer
        if answer is None:
            reply = await _turn(runtime, queue, job, sender, inline=inline)
            if reply is None:
                return Outcome("pending")
            answer = {"reply": reply_to_json(reply), "done": []}
            if not await runtime.blocking(queue.save_answer, job, answer):
                return Outcome("lost", reply)
        return await _send(runtime, queue, lease, sender, answer)
    finally:
        heartbeat.cancel()


@dataclass
class Lease:
    """This worker's lease on a job and when it last made sure of it (taken or renewed)."""

    queue: DeliveryQueue
    job: Job
    length_s: float
    confirmed: float
    """time.monotonic() of the take or the last renewal."""

    def fresh(self) -> bool:
        """Under a third of the lease has passed: nobody else can have taken the job."""
        return time.monotonic() - self.confirmed < self.length_s / 3

    def renew(self) -> bool:
        """Extend the lease; False when another worker has the job now."""
        started = time.monotonic()
        held = self.queue.renew(self.job, lease_s=self.length_s)
        if held:
            self.confirmed = started
        return held


async def _turn(
    runtime: Runtime, queue: DeliveryQueue, job: Job, sender: Sender, *, inline: bool
) -> Reply | None:
    """The turn's reply; a failure is raised (inline) or scheduled for another try."""
    try:
        await sender.before_turn(runtime, queue, job)
        return await runtime.run_turn(sender.message(job))
    except Exception as err:
        if inline:
            await runtime.blocking(queue.forget, job)
            raise
        log.warning("turn of delivery %s failed: %s", job.delivery_id, err, exc_info=True)
        await _retry_later(runtime, queue, job, f"turn: {type(err).__name__}: {err}", False)
        return None


async def _send(
    runtime: Runtime, queue: DeliveryQueue, lease: Lease, sender: Sender, answer: dict[str, Any]
) -> Outcome:
    """Every sending step not yet done; the rest of the delivery is tried again later."""
    job = lease.job
    reply = reply_from_json(answer["reply"])
    done = list(answer.get("done", []))
    problems: list[SendError] = []
    steps = [step for step in sender.steps(job, reply) if step not in done]
    for number, step in enumerate(steps, start=1):
        if not lease.fresh() and not await runtime.blocking(lease.renew):
            return Outcome("lost", reply)  # another worker has it now: it sends, not us
        try:
            await sender.send(runtime, job, reply, step)
        except SendError as err:
            problems.append(err)
            continue
        done.append(step)
        if number < len(steps):  # a crash before the next step does not send this one again
            await runtime.blocking(queue.save_answer, job, {**answer, "done": list(done)})
    if problems:
        await runtime.blocking(queue.save_answer, job, {**answer, "done": done})
        permanent = all(p.permanent for p in problems)
        message = "; ".join(str(p) for p in problems)
        status = await _retry_later(runtime, queue, job, message, permanent)
        return Outcome(status, reply)
    status = sender.done_status(job, reply)
    await runtime.blocking(queue.finish, job, status)
    return Outcome(status, reply)


async def _retry_later(
    runtime: Runtime, queue: DeliveryQueue, job: Job, error: str, permanent: bool
) -> str:
    """Schedule the next try or dead-letter the job; counted for /metrics."""
    delays = parse_durations(runtime.settings.delivery_retry_schedule)
    status: str = await runtime.blocking(
        lambda: queue.fail(job, error, delays, permanent=permanent)
    )
    if status == "failed":
        log.warning("delivery %s %s dead-lettered: %s", job.source, job.delivery_id, error)
        runtime.metrics.inc("assistant_delivery_dead_letters_total", source=job.source)
    else:
        log.info("delivery %s %s will be tried again: %s", job.source, job.delivery_id, error)
        runtime.metrics.inc("assistant_delivery_retries_total", source=job.source)
    return status


async def _renew(lease: Lease) -> None:
    """Keep the lease while the job runs, renewing it every third of its length."""
    job = lease.job
    while True:
        await asyncio.sleep(lease.length_s / 3)
        try:
            held = await asyncio.to_thread(lease.renew)
        except Exception:  # noqa: BLE001 - a database hiccup: the next renewal may work
            log.warning("could not renew the lease of delivery %s", job.delivery_id)
            continue
        if not held:
            log.warning("lost the lease of delivery %s; another worker has it", job.delivery_id)
            return


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """The reply as kept on the job: everything a sender renders."""
    return {
        "conversation_id": reply.conversation_id,
        "answer": reply.answer,
        "handoff": reply.handoff,
        "action": reply.grounding.action,
        "sources": [{**source.as_json(), "title": source.title} for source in reply.sources],
    }


def reply_from_json(data: dict[str, Any]) -> Reply:
    return Reply(
        str(data["conversation_id"]),
        str(data["answer"]),
        [_source(s) for s in data.get("sources", [])],
        bool(data.get("handoff", False)),
        Grounding(action=str(data.get("action", "none"))),
    )


def _source(data: dict[str, Any]) -> Source:
    return Source(
        str(data.get("source", "")),
        int(data.get("chunk_id", 0)),
        float(data.get("score", 0.0)),
        str(data.get("text", "")),
        title=str(data.get("title", "")),
        kb_version=int(data.get("kb_version", 0)),
        quote=str(data.get("quote", "")),
    )
