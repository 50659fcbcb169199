"""The engine: transformers' continuous batching for plain requests, a serial `generate` path for
the rest.

transformers' ContinuousBatchingManager owns the scheduler and the paged KV cache; we only add
requests, route its outputs to per-request asyncio queues and cancel. Its logits processors are
per-batch tensors (temperature, top-k, top-p), so a stateful per-request grammar cannot run inside
it: grammar-constrained requests (json_schema, forced tool calls) and seeded sampling go through
`model.generate`, one at a time.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import ModelError
from assistant.llm.devices import pick_device, pick_dtype
from assistant.llm.server.config import ServerConfig
from assistant.llm.server.grammar import GrammarCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """Per-request generation parameters."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Generation:
    """One request inside the batch: its outputs (cumulative token lists) arrive on `queue`."""

    request_id: str
    loop: asyncio.AbstractEventLoop
    batch: str = "greedy"
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


def _accepted(cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Only the options this transformers version knows (5.17 lacks some of 5.23's)."""
    names = set(inspect.signature(cls).parameters)
    return {k: v for k, v in options.items() if k in names}


class Engine:
    """A loaded model plus its continuous-batching manager.

    >>> engine = Engine(ServerConfig(model_path=path)); engine.start()
    >>> ids = engine.tokenizer("Hi")["input_ids"]
    >>> engine.generate_serial(ids, Sampling(max_tokens=8))
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.device = pick_device(config.device)
        self.ready = threading.Event()
        self.batching = False
        self._managers: dict[str, Any] = {}
        self._routes: dict[str, Generation] = {}
        self._routes_lock = threading.Lock()
        self._serial_lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Load the model (seconds), then start the batching loop and the output pump."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = pick_dtype(self.config.dtype, self.device)
        if self.device == "cpu" and self.config.cpu_threads:
            torch.set_num_threads(self.config.cpu_threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.config.model_path)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.config.model_path, dtype=dtype, attn_implementation="sdpa"
            ).to(self.device)
        except (OSError, ValueError) as err:
            raise ModelError(
                f"cannot load chat model from {self.config.model_path}: {err}"
            ) from err
        self.model.eval()
        torch.set_grad_enabled(False)
        self.eos_ids = self._eos_ids()
        self.grammars = GrammarCache(self.tokenizer, self.model.config.vocab_size)
        if not self._stopping.is_set():  # closed while loading: start no loop that would block exit
            self._start_batching()
            self.ready.set()

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = list(ids) if isinstance(ids, list) else [ids] if ids is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def _start_batching(self) -> None:
        """Two continuous batches on one model: greedy (no logits processors, the fast common case)
        and sampled (per-request temperature/top-p); without per-request sampling, sampled requests
        go serial."""
        try:
            self._managers["greedy"] = self._manager_for(sampled=False)
            self._managers["sampled"] = self._manager_for(sampled=True)
        except (ImportError, TypeError, AttributeError, ValueError) as err:
            log.warning("continuous batching: %s; the rest runs one request at a time", err)
        for manager in self._managers.values():
            manager.start()
            threading.Thread(
                target=self._pump, args=(manager,), name="cb-pump", daemon=True
            ).start()
        self.batching = "greedy" in self._managers

    def _manager_for(self, *, sampled: bool) -> Any:
        """A ContinuousBatchingManager with CPU-sized paging, or half the GPU memory each."""
        from transformers import GenerationConfig
        from transformers.generation import ContinuousBatchingConfig

        cpu = self.device == "cpu"
        options = {
            "per_request_processors": sampled,
            "page_size": self.config.page_size,
            "num_blocks": self.config.kv_blocks if cpu else None,
            "max_batch_tokens": 512 if cpu else None,
            "max_memory_percent": None if cpu else 0.4,
            "max_requests_per_batch": self.config.max_batch,
            "q_padding_interval_size": 1 if cpu else 0,
            "kv_padding_interval_size": self.config.page_size if cpu else 0,
        }
        if (
            sampled
            and "per_request_processors"
            not in inspect.signature(ContinuousBatchingConfig).parameters
        ):
            raise TypeError("this transformers has no per-request sampling in continuous batching")
        sampling = (
            {"do_sample": True, "temperature": 0.7, "top_p": 0.95}
            if sampled
            else {"do_sample": False}
        )
        generation = GenerationConfig(
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id or self.eos_ids[0],
            max_new_tokens=256,
            **sampling,
        )
        return self.model.init_continuous_batching(
            generation_config=generation,
            continuous_batching_config=ContinuousBatchingConfig(
                **_accepted(ContinuousBatchingConfig, options)
            ),
        )

    def _pump(self, manager: Any) -> None:
        """Route one manager's outputs to their request's asyncio queue."""
        while not self._stopping.is_set():
            output = manager.get_result(timeout=0.1)
            if output is None:
                if not manager.is_running():
                    self._stopping.wait(0.1)
                continue
            with self._routes_lock:
                route = self._routes.get(output.request_id)
                if route is not None and output.is_finished():
                    del self._routes[output.request_id]
            if route is not None:
                route.loop.call_soon_threadsafe(route.queue.put_nowait, output)

    def alive(self) -> bool:
        """False once a batching loop died (fatal error), so /health can say so."""
        return (
            self.ready.is_set()
            and not self._stopping.is_set()
            and all(
                m.is_running() and m.background_thread_status.fatal_error is None
                for m in self._managers.values()
            )
        )

    def batches(self, sampling: Sampling) -> bool:
        """Whether this request can join a continuous batch (else: the serial path)."""
        return ("sampled" if sampling.temperature > 0 else "greedy") in self._managers

    def submit(self, ids: list[int], sampling: Sampling) -> Generation:
        """Add a request to its running batch; call from the event loop."""
        kind = "sampled" if sampling.temperature > 0 else "greedy"
        generation = Generation(
            request_id=f"req-{uuid.uuid4().hex}", loop=asyncio.get_running_loop(), batch=kind
        )
        with self._routes_lock:
            self._routes[generation.request_id] = generation
        extra = {"temperature": float(sampling.temperature), "top_p": float(sampling.top_p)}
        self._managers[kind].add_request(
            ids,
            request_id=generation.request_id,
            max_new_tokens=sampling.max_tokens,
            streaming=True,
            eos_token_id=self.eos_ids,
            **(extra if kind == "sampled" else {}),
        )
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
        if schema is not None:
            options["logits_processor"] = [self.grammars.processor(schema)]
        inputs = torch.tensor([ids], device=self.device)
        with self._serial_lock:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            output = self.model.generate(
                input_ids=inputs, attention_mask=torch.ones_like(inputs), **options
            )
        return [int(t) for t in output[0, len(ids) :]]

    def close(self) -> None:
        """Stop the batching loops; safe to call twice."""
        self._stopping.set()
        managers, self._managers = list(self._managers.values()), {}
        for manager in managers:
            try:
                manager.stop(block=True, timeout=10)
            except RuntimeError as err:  # pragma: no cover - stop while paused
                log.warning("stopping a batching loop: %s", err)
