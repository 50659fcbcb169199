"""`assistant serve` with the instant stub LM in place of the configured one, for the webhook
benchmark.

    python -m benchmarks.webhook_server --no-web --port 8123 --workers 2

Everything else is the real server: settings from the environment (ASSISTANT_DATABASE_URL,
ASSISTANT_WEBHOOK_SECRET, ...), the real embedder, knowledge base, delivery queue and uvicorn
workers. The stub is swapped in at import time, so it also holds in the worker processes that
`--workers N` spawns: multiprocessing's spawn start method imports this main module again in each
child (as `__mp_main__`) before uvicorn builds the worker's app.
"""

from __future__ import annotations

import sys
from typing import Any

import assistant.wiring
from assistant_core.settings import Settings
from benchmarks.turn import InstantModel


def instant_chat_model(settings: Settings) -> Any:
    """The turn suite's stub: answers at once with the first passage's first line."""
    return InstantModel()


assistant.wiring.build_chat_model = instant_chat_model

if __name__ == "__main__":
    from assistant.cli import main

    main(["serve", *sys.argv[1:]])
