"""The webhook suite on real `assistant serve` processes over PostgreSQL: deliveries per second with
one worker process against two, and the acknowledgement latency of 50 concurrent deliveries.

Each server (`python -m benchmarks.webhook_server`, the real CLI with the instant stub LM) gets its
own fresh database and data folder, so an idle server's delivery workers never take the other's
queue; both stay up for the whole run and their rounds are interleaved (1, 2, 1, 2, ...), so a
drift in the shared machine's speed falls on both. The median round of each is reported. Rate
limits are off (`ASSISTANT_RATE_LIMIT_WEBHOOK_PER_MINUTE=0`: the benchmark sends thousands of
deliveries a minute from one address); every other setting is the default.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text

from benchmarks.serving import free_port
from ui.signing import signed_headers

SECRET = "bench-secret"
PG_SERVER = os.environ.get("ASSISTANT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How much does standard shipping cost?"
STARTED = "Application startup complete."
"""What uvicorn logs once per worker process when its app's lifespan (with the warm-up) is done."""


@dataclass(frozen=True)
class Sizes:
    rounds: int  # throughput rounds per server
    deliveries: int  # deliveries per throughput round
    in_flight: int  # deliveries the sender keeps unacknowledged at once
    ack_rounds: int  # rounds of `ack_concurrency` deliveries sent at once
    ack_concurrency: int = 50


QUICK = Sizes(rounds=3, deliveries=120, in_flight=50, ack_rounds=2)
FULL = Sizes(rounds=5, deliveries=400, in_flight=50, ack_rounds=6)


async def asgi_body(receive: Any) -> bytes:
    """A request's whole body, read from its ASGI messages."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


@contextmanager
def serving_asgi(app: Any, port: int) -> Iterator[None]:
    """A bare ASGI app on uvicorn (httptools, uvloop) on a loopback port, in a thread."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        interface="asgi3",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), f"port {port} listens", 30)
    if not server.started:
        raise RuntimeError(f"uvicorn did not start on port {port}")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# --- the callback receiver (this process) ------------------------------------------------------


@dataclass
class Receiver:
    """Records when each delivery's callback arrived (time.monotonic, comparable across processes
    on one host)."""

    port: int = field(default_factory=free_port)
    arrived: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def arrived_now(self, delivery_id: str) -> None:
        now = time.monotonic()
        with self.changed:
            self.arrived.setdefault(delivery_id, []).append(now)
            self.changed.notify_all()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The receiver as a bare ASGI app: its CPU is the benchmark's, not the server's, and on
        these 2 cores every millisecond of it is taken from the servers measured."""
        body = await asgi_body(receive)
        self.arrived_now(str(json.loads(body)["delivery_id"]))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Uvicorn (httptools, uvloop) on `port` in a thread of this process."""
        with serving_asgi(self.app, self.port):
            yield self

    def wait_for(self, ids: list[str], timeout_s: float) -> float:
        """Block until every id has a callback; the latest arrival time among them."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                missing = [i for i in ids if i not in self.arrived]
                if not missing:
                    return max(self.arrived[i][0] for i in ids)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(
                        f"{len(missing)} of {len(ids)} deliveries got no callback in {timeout_s} s"
                    )
                self.changed.wait(min(left, 1.0))

    def duplicates(self) -> int:
        with self.lock:
            return sum(len(times) - 1 for times in self.arrived.values())


# --- the senders (their own process) -----------------------------------------------------------


def _body(delivery_id: str, callback: str) -> bytes:
    return json.dumps(
        {
            "delivery_id": delivery_id,
            "conversation_id": f"conv-{delivery_id}",
            "text": QUESTION,
            "callback_url": callback,
        }
    ).encode()


def signed_requests(base: str, callback: str, ids: list[str]) -> list[bytes]:
    """Each delivery as the whole HTTP/1.1 request a help desk would send, signed now (the window
    is five minutes; a round takes seconds)."""
    host = base.removeprefix("http://")
    requests = []
    for delivery_id in ids:
        body = _body(delivery_id, callback)
        head = [
            "POST /webhooks/generic HTTP/1.1",
            f"Host: {host}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in signed_headers(SECRET, body).items()),
        ]
        requests.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return requests


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response from the server: (status, body, whether it closes the connection).
    The server's answers are small JSON with a Content-Length, never chunked."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            raise RuntimeError(f"unexpected transfer-encoding: {value.strip()}")
    body = await reader.readexactly(length)
    return status, body, "connection: close" in head


async def _send(
    base: str, callback: str, ids: list[str], in_flight: int
) -> tuple[float, list[float], list[str]]:
    """POST every id over `in_flight` keep-alive connections (so that many unacknowledged at
    once); (monotonic time of the first send, each acknowledgement's latency in ms from its first
    try, connection opening included, the transport errors retried). A delivery whose connection
    broke is sent again, as a help desk would: the same delivery_id, so a copy the server had taken
    is answered `duplicate` (200) and never answered twice.

    Plain asyncio streams over requests signed before the clock starts, not an HTTP client
    library: on these 2 cores every millisecond the sender spends is taken from the servers
    measured (httpx cost about 5 ms of CPU a delivery)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    pending = iter(zip(ids, signed_requests(base, callback, ids), strict=True))  # shared
    acks: list[float] = []
    retried: list[str] = []

    async def connection() -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for delivery_id, request in pending:
            started = time.monotonic()
            for attempt in range(3):
                try:
                    if streams is None:
                        streams = await asyncio.open_connection(host, int(port))
                    reader, writer = streams
                    writer.write(request)
                    status, body, closes = await _answer(reader)
                    break
                except (OSError, asyncio.IncompleteReadError) as err:
                    if streams is not None:
                        streams[1].close()
                    streams = None
                    if attempt == 2:
                        raise
                    retried.append(f"{type(err).__name__}: {err}"[:120])
            acks.append((time.monotonic() - started) * 1000)
            if status not in (200, 202):
                raise RuntimeError(f"delivery {delivery_id} answered {status}: {body[:300]!r}")
            if closes:
                writer.close()
                streams = None
        if streams is not None:
            streams[1].close()

    first = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(min(in_flight, len(ids)))))
    return first, acks, retried


def send(
    base: str, callback: str, ids: list[str], in_flight: int
) -> tuple[float, list[float], list[str]]:
    """The sender process's entry point (picklable), on uvloop: the sender's CPU is taken from the
    servers measured."""
    import uvloop

    return uvloop.run(_send(base, callback, ids, in_flight))


# --- the servers ----------------------------------------------------------------------------


@dataclass
class Served:
    """One `assistant serve --workers N` (the stub-LM launcher) on its own database."""

    workers: int
    database_url: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def healthy(self) -> bool:
        """Every worker process has started (warmed up in its lifespan) and /healthz answers."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"serve --workers {self.workers} exited: {self.log.read_text()[-3000:]}"
            )
        if self.log.read_text(errors="replace").count(STARTED) < self.workers:
            return False
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


class NoPostgres(RuntimeError):
    """No PostgreSQL server answered at ASSISTANT_BENCH_POSTGRES."""


@contextmanager
def fresh_database(server: str = PG_SERVER) -> Iterator[str]:
    """A new PostgreSQL database, dropped afterwards (as tests/conftest.py does for a test)."""
    from sqlalchemy.exc import OperationalError

    name = f"assistant_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{_sa_url(server)}/postgres", isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as err:
            raise NoPostgres(f"no PostgreSQL server at {server}: {err.orig}") from err
        try:
            yield f"{server}/{name}"
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        {
            "ASSISTANT_DATABASE_URL": database_url,
            "ASSISTANT_DATA_DIR": str(data_dir),
            "ASSISTANT_WEBHOOK_SECRET": SECRET,
            # never called: the launcher swaps the stub in; set so the warm-up builds the assistant
            "ASSISTANT_LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "ASSISTANT_RATE_LIMIT_WEBHOOK_PER_MINUTE": "0",
            "ASSISTANT_SHUTDOWN_GRACE_S": "5",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    return env


def ingest_help_centre(urls_and_dirs: list[tuple[str, Path]]) -> None:
    """The demo help centre into each database (one embedder loaded for all)."""
    from assistant.demo import HELP_CENTRE
    from assistant.wiring import Components
    from assistant_core.settings import Settings, load_settings

    base = load_settings().model_dump(
        exclude={"data_dir", "database_url", "webhook_secret", "upload_dir"}
    )
    embedder = None
    for url, data_dir in urls_and_dirs:
        settings = Settings(**{**base, "data_dir": data_dir, "database_url": url})
        parts = Components(settings, {"embedder": embedder} if embedder is not None else {})
        try:
            parts.knowledge.ingest([HELP_CENTRE])
            embedder = parts.embedder
        finally:
            parts.close()


def start_server(workers: int, database_url: str, data_dir: Path) -> Served:
    port = free_port()
    log = data_dir / f"serve-{workers}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.webhook_server", "--no-web"]
            + ["--port", str(port), "--workers", str(workers)],
            env=server_env(database_url, data_dir),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Served(workers, database_url, process, f"http://127.0.0.1:{port}", log)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        time.sleep(0.1)


# --- where the CPU goes -------------------------------------------------------------------------

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process: (parent pid, command line, CPU seconds so far). Linux /proc only; elsewhere
    empty."""
    found: dict[int, tuple[int, str, float]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (
            int(fields[1]),
            command,
            (int(fields[11]) + int(fields[12])) * TICK_S,
        )
    return found


def _group(pid: int, parent: int, command: str, servers: dict[int, int]) -> str:
    if pid in servers or parent in servers:
        return "server"  # the serve process and, with --workers N, its worker processes
    if pid == os.getpid() or parent == os.getpid():
        return "benchmark"  # the callback receiver and the sender process
    if "postgres" in command:
        return "postgres"
    return "other"


@dataclass
class CpuMeter:
    """CPU seconds by group (server, postgres, benchmark, other) over the measured rounds."""

    servers: dict[int, int]  # supervisor pid -> workers
    seconds: dict[int, dict[str, float]] = field(default_factory=dict)
    wall: dict[int, float] = field(default_factory=dict)

    @contextmanager
    def measuring(self, workers: int) -> Iterator[None]:
        before, started = _processes(), time.monotonic()
        yield
        after = _processes()
        self.wall[workers] = self.wall.get(workers, 0.0) + time.monotonic() - started
        spent = self.seconds.setdefault(workers, {})
        for pid, (parent, command, cpu) in after.items():
            used = cpu - before.get(pid, (0, "", 0.0))[2]
            name = _group(pid, parent, command, self.servers)
            spent[name] = spent.get(name, 0.0) + max(0.0, used)


# --- the measurement ---------------------------------------------------------------------------


@dataclass
class Bench:
    receiver: Receiver
    senders: futures.ProcessPoolExecutor
    meter: CpuMeter | None = None
    timeout_s: float = 300.0
    counter: int = 0
    retried: list[str] = field(default_factory=list)

    def ids(self, tag: str, n: int) -> list[str]:
        self.counter += 1
        return [f"{tag}-{self.counter}-{i}" for i in range(n)]

    def throughput(self, server: Served, n: int, in_flight: int) -> tuple[float, list[float]]:
        """Deliveries per second, first send to last callback; and the acknowledgements (ms)."""
        ids = self.ids(f"w{server.workers}", n)
        with self.meter.measuring(server.workers) if self.meter else nullcontext():
            first, acks, retried = self.senders.submit(
                send, server.base, self.receiver.url, ids, in_flight
            ).result()
            last = self.receiver.wait_for(ids, self.timeout_s)
        self.retried += retried
        return n / (last - first), acks

    def burst(self, server: Served, concurrency: int) -> tuple[list[str], list[float]]:
        """`concurrency` deliveries sent at once: their ids and acknowledgement latencies (ms).
        Their turns are left running while the next burst arrives."""
        ids = self.ids(f"ack{server.workers}", concurrency)
        _, acks, retried = self.senders.submit(
            send, server.base, self.receiver.url, ids, concurrency
        ).result()
        self.retried += retried
        return ids, acks

    def warm(self, server: Served, rounds: int = 3) -> None:
        """A few rounds of deliveries through every path (first turns, connections, callbacks)."""
        for _ in range(rounds):
            ids = self.ids(f"warm{server.workers}", 20)
            self.retried += self.senders.submit(
                send, server.base, self.receiver.url, ids, 20
            ).result()[2]
            self.receiver.wait_for(ids, self.timeout_s)


def busy_jobs() -> list[str]:
    """Other heavy jobs on the machine (test runs, other benchmarks), for the record."""
    mine = os.getpid()
    return sorted(
        command[:80]
        for pid, (parent, command, _) in _processes().items()
        if pid != mine
        and parent != mine
        and ("pytest" in command or "benchmarks." in command)
        and "webhook_server" not in command
    )


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(
    quick: bool = False, progress: Callable[[str], None] = print, sizes: Sizes | None = None
) -> dict[str, Any]:
    """One worker process against two on PostgreSQL; acknowledgement latency at 50 concurrent."""
    size = sizes or (QUICK if quick else FULL)
    import tempfile

    spawn = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistant-bench-")))
        urls = [stack.enter_context(fresh_database()) for _ in (1, 2)]
        dirs = [tmp / "one", tmp / "two"]
        for folder in dirs:
            folder.mkdir()
        progress("webhook: the help centre into two fresh PostgreSQL databases")
        ingest_help_centre(list(zip(urls, dirs, strict=True)))
        receiver = stack.enter_context(Receiver().running())
        senders = stack.enter_context(futures.ProcessPoolExecutor(1, mp_context=spawn))
        bench = Bench(receiver, senders)
        progress("webhook: starting `assistant serve --workers 1` and `--workers 2`")
        servers = {n: start_server(n, url, d) for n, url, d in zip((1, 2), urls, dirs, strict=True)}
        for served in servers.values():
            stack.callback(served.stop)
        for served in servers.values():
            wait_until(served.healthy, f"serve --workers {served.workers} answers", 300)
        for served in servers.values():
            bench.warm(served)
        meter = bench.meter = CpuMeter({s.process.pid: n for n, s in servers.items()})
        others = busy_jobs()
        rates: dict[int, list[float]] = {1: [], 2: []}
        for round_no in range(size.rounds):
            for n, served in servers.items():
                rate, _ = bench.throughput(served, size.deliveries, size.in_flight)
                rates[n].append(round(rate, 1))
                progress(
                    f"webhook: round {round_no + 1}/{size.rounds}, {n} worker(s): "
                    f"{rate:.1f} deliveries/s"
                )
        acks: dict[int, list[float]] = {1: [], 2: []}
        for n, served in servers.items():  # one server at a time: no turns of the other beside
            burst_ids: list[str] = []
            for _ in range(size.ack_rounds):
                ids, latencies = bench.burst(served, size.ack_concurrency)
                acks[n] += latencies
                burst_ids += ids
            progress(f"webhook: {len(burst_ids)} acknowledgements from {n} worker(s) taken")
            receiver.wait_for(burst_ids, bench.timeout_s)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    figures: dict[str, Any] = {
        "webhook.serve_deliveries_per_s_1_worker": round(one, 1),
        "webhook.serve_deliveries_per_s_2_workers": round(two, 1),
        "webhook.serve_2_vs_1_workers_ratio": round(two / one, 2),
        "webhook.serve_rounds_1_worker": rates[1],
        "webhook.serve_rounds_2_workers": rates[2],
        "webhook.serve_deliveries_per_round": size.deliveries,
        "webhook.serve_in_flight": size.in_flight,
        "webhook.serve_ack_concurrency": size.ack_concurrency,
        "webhook.serve_duplicate_callbacks": receiver.duplicates(),
        "webhook.serve_sends_retried": len(bench.retried),
        "webhook.serve_send_errors": sorted(set(bench.retried))[:5],
        "webhook.serve_database": "PostgreSQL",
        "webhook.serve_other_jobs_at_start": others,
        "webhook.commit": commit(),
    }
    for n, label in ((1, "1_worker"), (2, "2_workers")):
        delivered = size.rounds * size.deliveries
        spent = meter.seconds.get(n, {})
        figures[f"webhook.serve_cpu_ms_per_delivery_{label}"] = {
            name: round(seconds * 1000 / delivered, 1) for name, seconds in sorted(spent.items())
        }
        figures[f"webhook.serve_cores_busy_{label}"] = {
            name: round(seconds / meter.wall[n], 2) for name, seconds in sorted(spent.items())
        }
    for n, label in ((1, "1_worker"), (2, "2_workers")):
        figures[f"webhook.serve_ack_p50_ms_{label}"] = round(percentile(acks[n], 0.5), 1)
        figures[f"webhook.serve_ack_p99_ms_{label}"] = round(percentile(acks[n], 0.99), 1)
    figures["webhook.serve_ack_p99_ms"] = max(
        figures["webhook.serve_ack_p99_ms_1_worker"], figures["webhook.serve_ack_p99_ms_2_workers"]
    )
    return figures


def doc_section(results: dict[str, Any]) -> str:
    """The webhook section of docs/benchmarks.md: this run's figures with date, commit, machine."""
    from benchmarks.doc_sections import markers

    start, end = markers("webhook")
    r = results
    kind = "--quick " if r.get("quick") else ""
    met = {
        key: ("yes" if r[key] >= 1.6 else "**no**")
        if key.endswith("ratio")
        else ("yes" if r[key] <= 300 else "**no**")
        for key in ("webhook.serve_2_vs_1_workers_ratio", "webhook.serve_ack_p99_ms")
    }
    cpu1 = r["webhook.serve_cpu_ms_per_delivery_1_worker"]
    cpu2 = r["webhook.serve_cpu_ms_per_delivery_2_workers"]
    busy1 = r["webhook.serve_cores_busy_1_worker"]
    busy2 = r["webhook.serve_cores_busy_2_workers"]
    others = r.get("webhook.serve_other_jobs_at_start") or []
    groups = sorted(set(cpu1) | set(cpu2))

    def row(label: str, values: dict[str, float], unit: str) -> str:
        return f"| {label} | " + " | ".join(f"{values.get(g, 0)}{unit}" for g in groups) + " |"

    return "\n".join(
        [
            start,
            "## Webhook deliveries: one `assistant serve` worker process against two (PostgreSQL)",
            "",
            f"`assistant bench webhook {kind}`, started {r.get('started')} on {r.get('device')}, "
            f"{os.cpu_count()} CPU cores, load average {r.get('load_average')} at start, code "
            f"{r.get('webhook.commit')}; "
            + (
                f"other jobs running at the start: {len(others)} ({'; '.join(others)[:200]})."
                if others
                else "no test run or other benchmark was running."
            ),
            "",
            "Real processes and HTTP: `python -m benchmarks.webhook_server` (the `assistant serve` "
            "CLI with the instant stub LM swapped in; real embedder, knowledge base, durable "
            "queue), `--workers 1` and `--workers 2`, each on its own fresh PostgreSQL database "
            "and both up for the whole run; signed generic deliveries with a `callback_url` from a "
            "sender process (asyncio streams over keep-alive connections, the requests signed "
            f"before the clock starts, {r['webhook.serve_in_flight']} unacknowledged at once), "
            "callbacks to a receiver in the benchmark process. Deliveries/s: first delivery sent "
            "to last callback received, "
            f"{len(r['webhook.serve_rounds_1_worker'])} rounds of "
            f"{r['webhook.serve_deliveries_per_round']} per server, interleaved 1, 2, 1, 2, ..., "
            "the median round of each. Rate limits off; every other setting the default.",
            "",
            "| figure | 1 worker | 2 workers | goal | met |",
            "|---|---|---|---|---|",
            f"| deliveries/s, median round | {r['webhook.serve_deliveries_per_s_1_worker']} | "
            f"{r['webhook.serve_deliveries_per_s_2_workers']} | | |",
            f"| every round | {r['webhook.serve_rounds_1_worker']} | "
            f"{r['webhook.serve_rounds_2_workers']} | | |",
            f"| `webhook.serve_2_vs_1_workers_ratio` | | "
            f"**{r['webhook.serve_2_vs_1_workers_ratio']}** | >= 1.6 | "
            f"{met['webhook.serve_2_vs_1_workers_ratio']} |",
            f"| ack p50 / p99, {r['webhook.serve_ack_concurrency']} concurrent (ms) | "
            f"{r['webhook.serve_ack_p50_ms_1_worker']} / {r['webhook.serve_ack_p99_ms_1_worker']} "
            f"| {r['webhook.serve_ack_p50_ms_2_workers']} / "
            f"{r['webhook.serve_ack_p99_ms_2_workers']} | p99 <= 300 (the worse: "
            f"{r['webhook.serve_ack_p99_ms']}) | {met['webhook.serve_ack_p99_ms']} |",
            f"| duplicate callbacks | {r['webhook.serve_duplicate_callbacks']} (both) | | 0 | |",
            f"| sends retried after a broken connection | "
            f"{r.get('webhook.serve_sends_retried', 0)} (both) | | | |",
            "",
            "Where the CPU went during the throughput rounds (all processes on the machine, from "
            "/proc; server = the serve process and its workers, benchmark = sender and receiver):",
            "",
            "| | " + " | ".join(groups) + " |",
            "|---|" + "---|" * len(groups),
            row("CPU ms per delivery, 1 worker", cpu1, ""),
            row("CPU ms per delivery, 2 workers", cpu2, ""),
            row("cores busy, 1 worker", busy1, ""),
            row("cores busy, 2 workers", busy2, ""),
            "",
            "In process on SQLite (the older figure, same suite): ack p50 / p99 "
            f"{r.get('webhook.ack_p50_ms')} / {r.get('webhook.ack_p99_ms')} ms at "
            f"{r.get('webhook.concurrency')} concurrent, `/healthz` "
            f"{r.get('webhook.healthz_p50_ms')} / {r.get('webhook.healthz_p99_ms')} ms.",
            end,
        ]
    )


if __name__ == "__main__":
    from benchmarks.serving import run_suite_main

    run_suite_main("webhook_workers", run, __doc__)
