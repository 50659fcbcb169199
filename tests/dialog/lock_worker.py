"""Run in a child process: take a conversation's turn lock, hold it, log when (for the lock
tests)."""

from __future__ import annotations

import sys
import time

from assistant_core.db import make_engine
from dialog.locking import TurnLockTimeout, locks_for


def main(
    url: str, conversation_id: str, hold_s: float, log_path: str, name: str, timeout: float
) -> None:
    engine = make_engine(url)
    locks = locks_for(engine)
    with open(log_path, "a") as log:
        log.write(f"{name} asked {time.time():.4f}\n")
        log.flush()
        try:
            held = locks.acquire(conversation_id, timeout=timeout)
        except TurnLockTimeout:
            log.write(f"{name} timeout {time.time():.4f}\n")
            return
        log.write(f"{name} got {time.time():.4f}\n")
        log.flush()
        time.sleep(hold_s)
        log.write(f"{name} done {time.time():.4f}\n")
        log.flush()
        held.release()
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]))
