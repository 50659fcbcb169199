"""Webhook acknowledgement latency and delivery throughput, signed deliveries in callback mode.

Run: `python -m benchmarks.webhook [--quick]` (or `assistant bench webhook`). The LM is an instant
stub, so the figures are the server's own: verify, claim the delivery, queue the turn, answer 202;
then the turn (real embedder and knowledge base), the stored answer and the callback.

1. In process, on SQLite: 50 concurrent deliveries per round; the baseline is `GET /healthz` at the
   same concurrency on the same server.
2. Real `assistant serve` processes on PostgreSQL (`benchmarks.webhook_server`: the CLI with the
   stub LM swapped in), `--workers 1` and `--workers 2`, each on its own fresh database, both up
   for the whole run: deliveries per second end to end (first delivery sent -> last callback
   received), rounds interleaved 1, 2, 1, 2, ... and the median round of each reported; then the
   acknowledgement latency of 50 concurrent deliveries per round against each.

The senders run in their own process, as a real help desk would: their work does not hold the
server's GIL; the callback receiver runs in this one.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from assistant.wiring import Components
from assistant_core.settings import Settings, load_settings
from benchmarks.serving import run_suite_main, serving
from benchmarks.turn import InstantModel, percentiles
from ui.server import create_app
from ui.signing import signed_headers

SECRET = "bench-secret"


def callback_receiver() -> tuple[FastAPI, list[dict[str, Any]]]:
    """A loopback endpoint that records every callback it gets."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/callback")
    async def callback(request: Request) -> dict[str, str]:
        received.append(json.loads(await request.body()))
        return {"ok": "yes"}

    return app, received


async def _deliveries(base: str, callback: str, concurrency: int, round_no: int) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> float:
            body = json.dumps(
                {
                    "delivery_id": f"bench-{round_no}-{i}",
                    "conversation_id": f"bench-{i}",
                    "text": "How much does standard shipping cost?",
                    "callback_url": callback,
                }
            ).encode()
            headers = {**signed_headers(SECRET, body), "content-type": "application/json"}
            started = time.perf_counter()
            response = await client.post(f"{base}/webhooks/generic", content=body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 202:
                raise RuntimeError(f"delivery answered {response.status_code}: {response.text}")
            return elapsed

        return list(await asyncio.gather(*(one(i) for i in range(concurrency))))


async def _health(base: str, concurrency: int) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(_: int) -> float:
            started = time.perf_counter()
            (await client.get(f"{base}/healthz")).raise_for_status()
            return (time.perf_counter() - started) * 1000

        return list(await asyncio.gather(*(one(i) for i in range(concurrency))))


def client_round(
    base: str, callback: str, concurrency: int, round_no: int
) -> tuple[list[float], list[float]]:
    """One round from the client side: health checks, then signed deliveries, all at once."""
    health = asyncio.run(_health(base, concurrency))
    return health, asyncio.run(_deliveries(base, callback, concurrency, round_no))


def run(quick: bool = False, progress: Any = print) -> dict[str, Any]:
    """Both parts: the in-process SQLite figures, then `assistant serve` on PostgreSQL."""
    from benchmarks import webhook_workers

    figures = run_in_process(quick, progress)
    try:
        figures.update(webhook_workers.run(quick=quick, progress=progress))
    except webhook_workers.NoPostgres as err:  # the in-process figures still count
        progress(f"webhook: serve processes skipped: {err}")
        figures["webhook.serve_skipped"] = str(err)
    return figures


def run_in_process(quick: bool = False, progress: Any = print) -> dict[str, Any]:
    """Acks of signed async deliveries, side by side with health checks, on one server."""
    rounds, concurrency = (2, 50) if quick else (6, 50)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        base_settings = load_settings()
        settings = Settings(
            **{
                **base_settings.model_dump(
                    exclude={"data_dir", "database_url", "webhook_secret", "upload_dir"}
                ),
                "data_dir": Path(tmp),
                "webhook_secret": SECRET,
                "callback_backoff_s": 0.1,
            }
        )
        components = Components(settings, {"chat_model": InstantModel()})
        from assistant.demo import HELP_CENTRE

        components.knowledge.ingest([HELP_CENTRE])
        receiver, received = callback_receiver()
        acks: list[float] = []
        health: list[float] = []
        spawn = multiprocessing.get_context("spawn")
        with (
            serving(receiver) as callback_base,
            serving(create_app(components, web=False)) as base,
            # the senders run in their own process, like a real Chatwoot: no GIL shared with the
            # server
            futures.ProcessPoolExecutor(1, mp_context=spawn) as senders,
        ):
            progress(f"webhook: {rounds} rounds of {concurrency} concurrent signed deliveries")
            callback = f"{callback_base}/callback"
            for round_no in range(rounds):
                checks, delivered = senders.submit(
                    client_round, base, callback, concurrency, round_no
                ).result()
                health += checks
                acks += delivered
            deadline = time.monotonic() + 120
            while len(received) < rounds * concurrency and time.monotonic() < deadline:
                time.sleep(0.1)
        components.close()
    ack, ok = percentiles(acks), percentiles(health)
    return {
        "webhook.ack_p50_ms": round(ack["p50"], 1),
        "webhook.ack_p99_ms": round(ack["p99"], 1),
        "webhook.healthz_p50_ms": round(ok["p50"], 1),
        "webhook.healthz_p99_ms": round(ok["p99"], 1),
        "webhook.deliveries": len(acks),
        "webhook.callbacks_received": len(received),
        "webhook.concurrency": concurrency,
        "webhook.mean_ack_ms": round(statistics.fmean(acks), 1),
    }


if __name__ == "__main__":
    run_suite_main("webhook", run, __doc__)
