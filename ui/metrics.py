"""A few counters in the Prometheus text format, without a metrics library."""

from __future__ import annotations

import threading
from collections import defaultdict

_HELP = {
    "assistant_http_requests_total": "HTTP requests answered, by method and status code.",
    "assistant_turns_total": "Turns run, by channel.",
    "assistant_answers_total": "Questions answered, by the grounding check's action (passed, "
    "extractive, abstained).",
    "assistant_turn_seconds_total": "Seconds spent in turns, by channel.",
    "assistant_webhook_deliveries_total": "Webhook deliveries, by source and outcome.",
}


class Metrics:
    """Thread-safe labelled counters; `render()` is what `/metrics` serves.

    >>> metrics = Metrics(); metrics.inc("assistant_turns_total", channel="web")
    >>> "assistant_turns_total{channel=\\"web\\"} 1" in metrics.render()
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(_HELP) | set(self._values)):
                lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} counter"]
                for key, value in sorted(self._values.get(name, {}).items()):
                    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                    number = int(value) if float(value).is_integer() else value
                    lines.append(f"{name}{{{labels}}} {number}" if labels else f"{name} {number}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
