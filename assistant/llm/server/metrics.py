"""Prometheus metrics on a registry per server, so two servers in one process (tests) do not
collide."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    """Requests, tokens, queue depth, time to first token, decode speed, batch-loop restarts.

    >>> metrics = Metrics(); metrics.requests.labels(status="200").inc(); metrics.render()[:10]
    """

    def __init__(self, restarts: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Restarts(restarts))
        r = self.registry
        self.requests = Counter(
            "assistant_lm_requests",
            "Chat completion requests by HTTP status",
            ["status"],
            registry=r,
        )
        self.tokens = Counter("assistant_lm_tokens", "Tokens processed", ["kind"], registry=r)
        self.queue_depth = Gauge(
            "assistant_lm_queue_depth",
            "Admitted requests still waiting for their first token",
            registry=r,
        )
        self.in_flight = Gauge(
            "assistant_lm_in_flight", "Admitted requests not yet finished", registry=r
        )
        self.ttft = Histogram(
            "assistant_lm_time_to_first_token_seconds",
            "Time to first token",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rate = Histogram(
            "assistant_lm_tokens_per_second",
            "Decode speed of one request",
            buckets=RATE_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Restarts(Collector):
    """Batch-loop restarts, read from the engine at scrape time (the engine counts them)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "assistant_lm_batch_restarts",
            "Continuous-batching loops that died and were replaced",
            value=self.count(),
        )
