"""Building transformers' ContinuousBatchingManager for our engine: paging sized for the device,
repetition control plugged into its logits processors, and what one request can ever occupy."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any

from assistant.llm.server.config import ServerConfig
from assistant.llm.server.repetition import (
    KWARGS,
    NO_MARKERS,
    Markers,
    Penalties,
    batch_processor_class,
)

log = logging.getLogger(__name__)


def accepted(target: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Only the options this transformers version knows (5.17 lacks some of 5.24's)."""
    names = set(inspect.signature(target).parameters)
    return {k: v for k, v in options.items() if k in names}


def build_manager(
    model: Any,
    config: ServerConfig,
    *,
    device: str,
    eos_ids: list[int],
    pad_id: int,
    sampled: bool,
    penalties: Penalties | None,
    markers: Markers = NO_MARKERS,
) -> tuple[Any, bool]:
    """A manager (not started) and whether it carries repetition control.

    Raises TypeError where this transformers has no per-request sampling and `sampled` is asked.
    """
    from transformers import GenerationConfig
    from transformers.generation import ContinuousBatchingConfig

    cpu = device == "cpu"
    params = inspect.signature(ContinuousBatchingConfig).parameters
    if sampled and "per_request_processors" not in params:
        raise TypeError("this transformers has no per-request sampling in continuous batching")
    repetition = batch_processor_class() if penalties is not None else None
    options: dict[str, Any] = {
        "per_request_processors": sampled,
        "page_size": config.page_size,
        "num_blocks": config.kv_blocks if cpu else None,
        "max_batch_tokens": 512 if cpu else None,
        "max_memory_percent": None if cpu else 0.4,
        "max_requests_per_batch": config.max_batch,
        "q_padding_interval_size": 1 if cpu else 0,
        "kv_padding_interval_size": config.page_size if cpu else 0,
    }
    if repetition is not None:
        # our processor reads each request's history when the batch is scheduled and uses it in
        # the forward pass right after: no graph replay, no overlap of scheduling and compute
        options.update(use_cuda_graph=False, use_async_batching=False)
    sampling = (
        {"do_sample": True, "temperature": 0.7, "top_p": 0.95} if sampled else {"do_sample": False}
    )
    generation = GenerationConfig(
        eos_token_id=eos_ids, pad_token_id=pad_id, max_new_tokens=256, **sampling
    )
    manager = model.init_continuous_batching(
        generation_config=generation,
        continuous_batching_config=ContinuousBatchingConfig(
            **accepted(ContinuousBatchingConfig, options)
        ),
    )
    carried = repetition is not None and _install(manager, repetition(penalties, markers))
    return manager, carried


def _install(manager: Any, processor: Any) -> bool:
    """Put our processor first in the manager's list (before temperature and top-p), as transformers
    builds that list itself from the generation config."""
    try:
        processors = manager.logit_processor
        processors.logits_processor.insert(0, processor)
        processors.tensors_required += 1
        processors.supported_keys.update(KWARGS)
        processors.do_processing = True
    except AttributeError as err:  # a transformers whose list is shaped differently
        log.warning("repetition control cannot join this continuous batch (%s): serial path", err)
        return False
    return True


def wait_until_scheduling(manager: Any, timeout_s: float = 120.0) -> None:
    """Block until the manager's thread has built its KV cache (raises if the thread died first)."""
    deadline = time.monotonic() + timeout_s
    while getattr(manager, "batch_processor", None) is None:
        status = getattr(manager, "background_thread_status", None)
        fatal = getattr(status, "fatal_error", None)
        if fatal is not None or not manager.is_running():
            raise RuntimeError(f"the batch loop stopped while starting: {fatal}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the batch loop did not start within {timeout_s:g} s")
        threading.Event().wait(0.02)


def kv_capacity(manager: Any, config: ServerConfig, device: str) -> int | None:
    """Tokens one request can hold in the paged KV cache (prompt + answer): beyond it, transformers'
    scheduler can neither place nor offload the request, and its loop dies."""
    cache = getattr(getattr(manager, "batch_processor", None), "cache", None)
    tokens = getattr(cache, "max_tokens_read", None)
    if tokens is None and cache is not None:
        tokens = getattr(cache, "num_blocks", 0) * getattr(cache, "block_size", config.page_size)
    if not tokens and device == "cpu":
        tokens = config.kv_blocks * config.page_size
    return int(tokens) if tokens else None


def is_dying(manager: Any) -> bool:
    """The loop is failing or gone (a fatal error, a hard stop, or its thread ended)."""
    status = getattr(manager, "background_thread_status", None)
    if getattr(status, "fatal_error", None) is not None:
        return True
    hard = getattr(type(status), "HARD_STOP", None)
    local = getattr(status, "local_status", None)
    if hard is not None and local is not None and local >= hard:
        return True
    return not manager.is_running()


def discard(manager: Any, join_s: float = 5.0) -> None:
    """Let go of a dead manager and its KV cache without `stop()` (which would also switch the
    model's attention back under the other batch's feet)."""
    thread = getattr(manager, "_generation_thread", None)
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=join_s)
    manager.batch_processor = None


def stop_all(running: list[Any], timeout_s: float) -> None:
    """Hard-stop every loop at once and wait for them together, within `timeout_s` in all.

    `manager.stop()` would do them one by one, each with a full `gc.collect()` (seconds on a big
    heap): too slow for a SIGTERM. Where this transformers lacks the pieces, `stop()` it is.
    """
    deadline = time.monotonic() + timeout_s
    for manager in running:
        status = getattr(manager, "background_thread_status", None)
        hard = getattr(type(status), "HARD_STOP", None)
        helper = getattr(manager, "distributed_helper", None)
        wake = getattr(manager, "_wake_up_loop", None)
        if hard is None or wake is None or status is None or not hasattr(status, "request_stop"):
            options = accepted(manager.stop, {"hard_stop": True})
            manager.stop(block=True, timeout=max(0.1, deadline - time.monotonic()), **options)
            continue
        status.request_stop(hard, getattr(helper, "global_rank", 0))
        wake.set()
    for manager in running:
        thread = getattr(manager, "_generation_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
