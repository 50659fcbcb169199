"""Workers that take webhook deliveries from the durable queue, in every server process.

Each process runs `delivery_workers` loops. A loop leases the oldest runnable delivery, runs the
one delivery sequence (`ui.webhooks.delivery.run_delivery`), and looks again; an idle loop sleeps
until this process queues a delivery or `delivery_poll_s` passes (deliveries queued by other
processes). While the process is acknowledging webhooks, loops take nothing new for a moment
(`INTAKE_FIRST_S`): turns would hold the GIL the acknowledgements wait for. On shutdown no new
delivery is taken, in-flight ones may finish within the grace period, and the leases of the rest
are released so another process takes them at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ui.jobs import DeliveryQueue, Job
from ui.runtime import Runtime, turn_threads_for
from ui.webhooks.delivery import Outcome, Sender, run_delivery

log = logging.getLogger(__name__)

INTAKE_FIRST_S = 0.25
"""How long an idle delivery loop holds back from taking a new delivery while this process is
acknowledging webhooks. Acknowledgements come first (a sender that waits too long retries or
gives up; the answer goes out a moment later either way); bounded, so a stream of webhooks never
starves the answers."""


class DeliveryWorkers:
    """The delivery loops of one server process, with the queue they share.

    >>> workers = DeliveryWorkers(runtime, {"generic": GenericSender()})
    >>> await workers.start(); ...; await workers.stop(grace_s=30)
    """

    def __init__(self, runtime: Runtime, senders: Mapping[str, Sender]) -> None:
        self.runtime = runtime
        self.senders = dict(senders)
        self.worker_id = f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._queue: DeliveryQueue | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._intake = 0
        self._quiet = asyncio.Event()
        self.in_flight: dict[int, Job] = {}

    @property
    def queue(self) -> DeliveryQueue:
        if self._queue is None:
            import ui.records  # noqa: F401  (register the table)

            self._queue = DeliveryQueue(self.runtime.components.database.session)
        return self._queue

    @property
    def size(self) -> int:
        setting = self.runtime.settings.delivery_workers
        return setting or turn_threads_for(self.runtime.settings.turn_threads)

    async def start(self) -> None:
        """Start the loops; deliveries left by a dead process are taken once their lease ends, at
        once when it ran on this host."""
        try:
            released = await asyncio.to_thread(self.queue.release_dead, _host(), _alive)
        except Exception:  # noqa: BLE001 - the leases still expire: this only shortens the wait
            log.warning("could not look for deliveries of dead processes", exc_info=True)
        else:
            if released:
                log.warning("took back %d deliveries of dead processes on this host", released)
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._quiet = asyncio.Event()
        if not self._intake:
            self._quiet.set()
        self._loops = [
            asyncio.get_running_loop().create_task(self._loop(), name=f"deliveries {n}")
            for n in range(self.size)
        ]

    @contextmanager
    def intake(self) -> Iterator[None]:
        """Around acknowledging a webhook: meanwhile the delivery loops take nothing new (for at
        most INTAKE_FIRST_S), so the acknowledgement is not kept waiting for the GIL by turns."""
        self._intake += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._intake -= 1
            if not self._intake:
                self._quiet.set()

    async def _after_intake(self) -> None:
        if not self._intake:
            return
        try:
            await asyncio.wait_for(self._quiet.wait(), timeout=INTAKE_FIRST_S)
        except TimeoutError:
            return

    def wake(self) -> None:
        """A delivery was queued here: an idle loop takes it now rather than at its next poll."""
        self._wakeup.set()

    async def stop(self, grace_s: float) -> None:
        """Take nothing new, let in-flight deliveries finish within `grace_s`, release the rest."""
        self._stopping = True
        self._wakeup.set()
        if self._loops:
            _, late = await asyncio.wait(self._loops, timeout=grace_s)
            released = await asyncio.to_thread(self.queue.release_worker, self.worker_id)
            if late or released:
                log.warning(
                    "shutdown: %d deliveries still running after %.0f s; their leases released",
                    released,
                    grace_s,
                )
            for task in late:
                task.cancel()
        self._loops = []

    async def _loop(self) -> None:
        while not self._stopping:
            await self._after_intake()
            if self._stopping:  # shutdown began while it held back: take nothing new
                break
            job = await self._take()
            if job is None:
                await self._idle()
                continue
            self.in_flight[job.id] = job
            try:
                await self.run(job)
            except Exception:  # noqa: BLE001 - one delivery's bug never stops the loop
                log.exception("delivery %s %s failed", job.source, job.delivery_id)
            finally:
                self.in_flight.pop(job.id, None)

    async def run(self, job: Job, *, inline: bool = False) -> Outcome | None:
        """The delivery sequence for a leased job (None: no sender knows its source)."""
        sender = self.senders.get(job.source)
        if sender is None:
            log.error("no sender for deliveries from %r; left for another version", job.source)
            await asyncio.to_thread(self.queue.release, job)
            return None
        return await run_delivery(self.runtime, self.queue, job, sender, inline=inline)

    async def _take(self) -> Job | None:
        try:
            return await asyncio.to_thread(
                lambda: self.queue.take(
                    self.worker_id, lease_s=self.runtime.settings.delivery_lease_s
                )
            )
        except Exception:  # noqa: BLE001 - database away: look again after the poll interval
            log.warning("could not look for deliveries", exc_info=True)
            return None

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(
                self._wakeup.wait(), timeout=self.runtime.settings.delivery_poll_s
            )
        except TimeoutError:
            return
        if not self._stopping:
            self._wakeup.clear()

    async def metrics(self) -> str:
        """Queue gauges in the Prometheus text format, read from the database."""
        try:
            stats = await asyncio.to_thread(self.queue.stats)
        except Exception:  # noqa: BLE001 - the database away: the counters are still served
            log.warning("could not read the delivery queue for /metrics", exc_info=True)
            return ""
        lines = [
            "# HELP assistant_delivery_queue_depth Webhook deliveries still to be worked on.",
            "# TYPE assistant_delivery_queue_depth gauge",
            f'assistant_delivery_queue_depth{{status="pending"}} {stats.pending}',
            f'assistant_delivery_queue_depth{{status="running"}} {stats.running}',
            "# HELP assistant_delivery_oldest_age_seconds Age of the oldest delivery still to be "
            "worked on.",
            "# TYPE assistant_delivery_oldest_age_seconds gauge",
            f"assistant_delivery_oldest_age_seconds {stats.oldest_age_s:.3f}",
            "# HELP assistant_delivery_dead_letters Deliveries whose retries are used up (failed).",
            "# TYPE assistant_delivery_dead_letters gauge",
            f"assistant_delivery_dead_letters {stats.failed}",
        ]
        return "\n".join(lines) + "\n"


def _host() -> str:
    return socket.gethostname()[:60].replace(":", "-")


def _alive(pid: int) -> bool:
    """Whether a process of this host has this pid (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
