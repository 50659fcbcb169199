"""The engine: transformers' continuous batching for plain requests, a serial `generate` path for
the rest, and a supervisor that outlives a dying batch loop.

transformers' ContinuousBatchingManager owns the scheduler and the paged KV cache; we only add
requests, route its outputs to per-request asyncio queues and cancel. Its logits processors are
per-batch tensors (temperature, top-k, top-p, and our repetition control), so a stateful
per-request grammar cannot run inside it: grammar-constrained requests (json_schema, forced tool
calls) and seeded sampling go through `model.generate`, one at a time.

If a manager's background thread dies, the pump that reads its outputs fails the requests it held
(`BatchLost`, a 503), builds a fresh manager and carries on; when that fails, or the loop keeps
dying, the engine is `failed` and `on_fatal` runs (the CLI exits non-zero for its supervisor).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistant.llm.devices import pick_device, pick_dtype
from assistant.llm.server import managers
from assistant.llm.server.config import ServerConfig
from assistant.llm.server.grammar import GrammarCache
from assistant.llm.server.repetition import NO_MARKERS, Markers, Penalties, SerialRepetition
from assistant_core.errors import ModelError

log = logging.getLogger(__name__)


class BatchLost(Exception):
    """The batch loop died under this request, or the engine is down: the client may retry (503)."""


SAMPLING_EPS = 1e-5
"""A temperature below this samples greedily (vLLM's rule): scores divided by a temperature near 0
overflow to inf, the probabilities turn NaN, and `torch.multinomial` kills the batch loop."""


@dataclass(frozen=True)
class Sampling:
    """Per-request generation parameters."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    penalties: Penalties = Penalties()

    def __post_init__(self) -> None:
        if self.temperature < SAMPLING_EPS:
            object.__setattr__(self, "temperature", 0.0)


@dataclass
class Generation:
    """One request inside the batch: its outputs (cumulative token lists, or a BatchLost) arrive on
    `queue`."""

    request_id: str
    loop: asyncio.AbstractEventLoop
    batch: str = "greedy"
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class Engine:
    """A loaded model plus its continuous-batching managers.

    >>> engine = Engine(ServerConfig(model_path=path)); engine.start()
    >>> ids = engine.tokenizer("Hi")["input_ids"]
    >>> engine.generate_serial(ids, Sampling(max_tokens=8))
    """

    def __init__(self, config: ServerConfig, on_fatal: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.device = pick_device(config.device)
        self.ready = threading.Event()
        self.batching = False
        self.penalties = Penalties(
            repetition=config.repetition_penalty, loop_ngram=config.loop_ngram
        )
        self.context_tokens = 0
        self.markers = NO_MARKERS
        self.restarts = 0
        self.failure: str | None = None
        self.on_fatal = on_fatal
        self._managers: dict[str, Any] = {}
        self._carries: dict[str, bool] = {}
        self._stopped: list[Any] = []
        self._recovering: set[str] = set()
        self._restart_times: deque[float] = deque()
        self._routes: dict[str, Generation] = {}
        self._routes_lock = threading.Lock()
        self._serial_lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Load the model (seconds), then start the batching loops and their pumps."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = pick_dtype(self.config.dtype, self.device)
        if self.device == "cpu" and self.config.cpu_threads:
            torch.set_num_threads(self.config.cpu_threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.config.model_path)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.config.model_path, dtype=dtype, attn_implementation="sdpa"
            ).to(self.device)  # type: ignore[arg-type]  # transformers wraps PreTrainedModel.to; mypy reads the wrapper as unbound
        except (OSError, ValueError) as err:
            raise ModelError(
                f"cannot load chat model from {self.config.model_path}: {err}"
            ) from err
        self.model.eval()
        torch.set_grad_enabled(False)
        self.eos_ids = self._eos_ids()
        self.grammars = GrammarCache(self.tokenizer, self.model.config.vocab_size)
        self.markers = Markers.of(self.tokenizer) if self.penalties.loop_ngram else NO_MARKERS
        self.context_tokens = self._model_context()
        if not self._stopping.is_set():  # closed while loading: start no loop that would block exit
            self._start_batching()
            self.ready.set()

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = list(ids) if isinstance(ids, list) else [ids] if ids is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def _model_context(self) -> int:
        """Positions the model was trained for (and the tokenizer admits)."""
        limits = [getattr(self.model.config, "max_position_embeddings", None)]
        limits.append(getattr(self.tokenizer, "model_max_length", None))
        known = [int(n) for n in limits if isinstance(n, int) and 0 < n < 10**8]
        return min(known) if known else 2048

    def _start_batching(self) -> None:
        """Two continuous batches on one model: greedy (the common case) and sampled (per-request
        temperature/top-p); without per-request sampling, sampled requests go serial."""
        try:
            for kind in ("greedy", "sampled"):
                self._managers[kind] = self._new_manager(kind)
        except (ImportError, TypeError, AttributeError, ValueError, RuntimeError) as err:
            log.warning("continuous batching: %s; the rest runs one request at a time", err)
        for kind in list(self._managers):
            threading.Thread(target=self._pump, args=(kind,), name="cb-pump", daemon=True).start()
        self.batching = "greedy" in self._managers
        if self._managers and not self.batch_penalties and self.penalties.active:
            log.warning(
                "this transformers' batch cannot apply repetition control: the default (%s) is "
                "off; requests that ask for penalties run one at a time",
                self.penalties,
            )
            self.penalties = Penalties()

    def _new_manager(self, kind: str) -> Any:
        """Build, start and wait for one manager; its KV cache bounds what a request may ask."""
        manager, carried = managers.build_manager(
            self.model,
            self.config,
            device=self.device,
            eos_ids=self.eos_ids,
            pad_id=self.tokenizer.pad_token_id or self.eos_ids[0],
            sampled=kind == "sampled",
            penalties=self.penalties,
            markers=self.markers,
        )
        self._carries[kind] = carried
        manager.start()
        try:
            managers.wait_until_scheduling(manager)
        except RuntimeError:
            managers.discard(manager, join_s=0)
            raise
        capacity = managers.kv_capacity(manager, self.config, self.device)
        if capacity:
            self.context_tokens = min(self.context_tokens, capacity)
        return manager

    def _pump(self, kind: str) -> None:
        """Route one batch's outputs to their requests; replace the manager if its loop died."""
        while not self._stopping.is_set() and self.failure is None:
            manager = self._managers.get(kind)
            if manager is None:
                return
            output = manager.get_result(timeout=0.1)
            if output is not None:
                self._route(manager, output)
            elif managers.is_dying(manager) and not self._stopping.is_set():
                self._recover(kind, manager)

    def _route(self, manager: Any, output: Any, lost: bool = False) -> None:
        with self._routes_lock:
            route = self._routes.get(output.request_id)
            if route is not None and output.is_finished():
                del self._routes[output.request_id]
        if route is None:
            return
        item: Any = output
        if output.error is not None and (lost or managers.is_dying(manager)):
            item = BatchLost(f"the batch loop failed ({output.error}); please retry")
        self._deliver(route, item)

    @staticmethod
    def _deliver(route: Generation, item: Any) -> None:
        try:
            route.loop.call_soon_threadsafe(route.queue.put_nowait, item)
        except RuntimeError:  # that request's event loop is gone: nobody is waiting
            pass

    def _recover(self, kind: str, dead: Any) -> None:
        """Fail what the dead loop held (503), then start a fresh manager in its place."""
        error = getattr(dead.background_thread_status, "fatal_error", None)
        log.error("the %s batch loop died (%s); restarting it", kind, error or "its thread ended")
        self._recovering.add(kind)
        try:
            while (output := dead.get_result(timeout=0)) is not None:
                self._route(dead, output, lost=True)
            self._fail_routes(kind, BatchLost(f"the batch loop failed ({error}); please retry"))
            managers.discard(dead)
            gc.collect()
            self._empty_device_cache()
            now = time.monotonic()
            self._restart_times.append(now)
            while (
                self._restart_times and now - self._restart_times[0] > self.config.restart_window_s
            ):
                self._restart_times.popleft()
            if len(self._restart_times) > self.config.max_restarts:
                raise RuntimeError(
                    f"{len(self._restart_times)} restarts within {self.config.restart_window_s:g} s"
                )
            self._managers[kind] = self._new_manager(kind)
            self.restarts += 1
            log.warning("the %s batch loop is serving again (restart %d)", kind, self.restarts)
        except Exception as err:  # noqa: BLE001 - any failure here ends the engine, said out loud
            self._fail(f"the {kind} batch loop cannot be restarted: {err}")
        finally:
            self._recovering.discard(kind)

    def _fail_routes(self, kind: str | None, error: BatchLost) -> None:
        with self._routes_lock:
            lost = [r for r in self._routes.values() if kind is None or r.batch == kind]
            for route in lost:
                del self._routes[route.request_id]
        for route in lost:
            self._deliver(route, error)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.critical("language model engine failed: %s", reason)
        self._fail_routes(None, BatchLost(f"the model server failed: {reason}"))
        if self.on_fatal is not None:
            self.on_fatal(reason)

    def _empty_device_cache(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    @property
    def batch_penalties(self) -> bool:
        """Whether the batches apply repetition control (else such requests go serial)."""
        return bool(self._carries) and all(self._carries.values())

    def status(self) -> str:
        """loading, ok, restarting (a batch loop is being replaced), failed, or stopped."""
        if self.failure is not None:
            return "failed"
        if not self.ready.is_set():
            return "loading"
        if self._stopping.is_set():
            return "stopped"
        if self._recovering or any(managers.is_dying(m) for m in self._managers.values()):
            return "restarting"
        return "ok"

    def alive(self) -> bool:
        """True while requests can be served: loaded, and every batching loop running."""
        return self.status() == "ok"

    def batches(self, sampling: Sampling) -> bool:
        """Whether this request can join a continuous batch (else: the serial path)."""
        kind = "sampled" if sampling.temperature > 0 else "greedy"
        if sampling.penalties.active and not self.batch_penalties:
            return False
        return kind in self._managers

    def submit(self, ids: list[int], sampling: Sampling) -> Generation:
        """Add a request to its running batch; call from the event loop. Raises BatchLost when the
        batch does not take it (its loop is dying)."""
        kind = "sampled" if sampling.temperature > 0 else "greedy"
        generation = Generation(
            request_id=f"req-{uuid.uuid4().hex}", loop=asyncio.get_running_loop(), batch=kind
        )
        extra: dict[str, Any] = {}
        if kind == "sampled":
            extra.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p))
        if self.batch_penalties:
            extra.update(sampling.penalties.kwargs())
        with self._routes_lock:
            self._routes[generation.request_id] = generation
        manager = self._managers.get(kind)
        taken = (
            manager.add_request(
                ids,
                request_id=generation.request_id,
                max_new_tokens=sampling.max_tokens,
                streaming=True,
                eos_token_id=self.eos_ids,
                **extra,
            )
            if manager is not None and self.failure is None
            else None
        )
        if taken is None:
            with self._routes_lock:
                self._routes.pop(generation.request_id, None)
            raise BatchLost(self.failure or "the batch loop is restarting; please retry")
        return generation

    def cancel(self, generation: Generation) -> None:
        """Free the request's slot and KV blocks now (client gone, deadline passed, stop string
        seen)."""
        with self._routes_lock:
            known = self._routes.pop(generation.request_id, None)
        manager = self._managers.get(generation.batch)
        if known is not None and manager is not None:
            manager.cancel_request(generation.request_id)

    def generate_serial(
        self,
        ids: list[int],
        sampling: Sampling,
        schema: dict[str, Any] | None = None,
        cancelled: threading.Event | None = None,
    ) -> list[int]:
        """`model.generate` under a lock: for grammar-constrained, seeded, or non-batching
        requests."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                stop = cancelled is not None and cancelled.is_set()
                return torch.full(
                    (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
                )

        options: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id or self.eos_ids[0],
            "stopping_criteria": StoppingCriteriaList([_Cancelled()]),
        }
        if sampling.temperature > 0:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        processors: list[Any] = []
        if sampling.penalties.active:
            processors.append(SerialRepetition(len(ids), sampling.penalties, self.markers))
        if schema is not None:
            processors.append(self.grammars.processor(schema))
        if processors:
            options["logits_processor"] = processors
        inputs = torch.tensor([ids], device=self.device)
        with self._serial_lock:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            output = self.model.generate(
                input_ids=inputs, attention_mask=torch.ones_like(inputs), **options
            )
        return [int(t) for t in output[0, len(ids) :]]

    def threads_alive(self) -> bool:
        """Whether a batch loop thread (non-daemon: it holds up interpreter exit) still runs."""
        return any(
            getattr(m, "_generation_thread", None) is not None and m._generation_thread.is_alive()
            for m in self._stopped
        )

    def close(self) -> None:
        """Stop the batching loops within `config.shutdown_s`, failing what they held; safe to
        call twice."""
        self._stopping.set()
        stopping, self._managers = list(self._managers.values()), {}
        self._stopped += stopping
        try:
            managers.stop_all(stopping, self.config.shutdown_s)
        except RuntimeError as err:  # pragma: no cover - stop while paused
            log.warning("stopping the batching loops: %s", err)
        self._fail_routes(None, BatchLost("the model server is shutting down"))
