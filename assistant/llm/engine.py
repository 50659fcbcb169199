"""A transformers chat model run in this process, without a server: for scripts and tests (the
assistant itself uses the model server). Same rules as the server: bad Unicode and prompts past the
context are refused before any work, and repetition control is on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from assistant.llm.devices import pick_device, pick_dtype
from assistant.llm.server.repetition import NO_MARKERS, Markers, Penalties, SerialRepetition
from assistant.llm.server.schemas import bad_unicode
from assistant_core.chat_model import ChatMessages, Completion, ContextTooLong, Usage
from assistant_core.errors import LLMError, ModelError

if TYPE_CHECKING:
    from transformers import BatchEncoding

DEFAULT_PENALTIES = Penalties(loop_ngram=6)
"""The model server's default (`ServerConfig.loop_ngram`), so both paths answer alike."""


class TransformersChatModel:
    """Greedy or sampled generation with a Hugging Face model, streamed through a background thread.

    >>> model = TransformersChatModel(
    ...     Path("~/.local/share/assistant/models/SmolLM2-135M-Instruct.Q4_1")
    ... )
    >>> model.complete([{"role": "user", "content": "Capital of France?"}], max_tokens=16).text
    'The capital of France is Paris.'
    """

    def __init__(
        self, path: Path, *, device: str = "auto", penalties: Penalties = DEFAULT_PENALTIES
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = pick_device(device)
        dtype = pick_dtype("auto", self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device)  # type: ignore[arg-type]  # transformers wraps PreTrainedModel.to; mypy reads the wrapper as unbound
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot load chat model from {path}: {err}") from err
        self.model.eval()
        self.name = path.name
        self.penalties = penalties
        self.markers = Markers.of(self.tokenizer) if penalties.loop_ngram else NO_MARKERS
        self.context_tokens = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()

    def _inputs(self, messages: ChatMessages, max_tokens: int) -> Any:
        """Prompt tensors; the same refusals as the model server (bad Unicode, too long), before
        any work."""
        if max_tokens < 1:
            raise LLMError(f"max_tokens must be at least 1, not {max_tokens}")
        problem = bad_unicode(list(messages), "messages")
        if problem:
            raise LLMError(problem)
        ids = cast(  # return_dict: a BatchEncoding
            "BatchEncoding",
            self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            ),
        )
        prompt = int(ids["input_ids"].shape[1])
        if prompt + max_tokens > self.context_tokens:
            raise ContextTooLong(
                f"the prompt ({prompt} tokens) plus max_tokens ({max_tokens}) exceed this model's "
                f"context of {self.context_tokens} tokens",
                prompt,
                self.context_tokens,
            )
        return {k: v.to(self.device) for k, v in ids.items()}

    def _sampling(
        self, max_tokens: int, temperature: float, prompt_len: int, constrained: bool = False
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options["temperature"] = temperature
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if self.penalties.active and not constrained:
            options["logits_processor"] = [
                SerialRepetition(prompt_len, self.penalties, self.markers)
            ]
        return options

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages, max_tokens)
        options = self._sampling(max_tokens, temperature, inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock:
                    self.model.generate(**inputs, streamer=streamer, **options)
            except BaseException as err:  # re-raised in the consumer's thread
                failure.append(err)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for text in streamer:
            if text:
                yield text
        worker.join()
        if failure:
            raise LLMError(f"generation failed: {failure[0]}") from failure[0]

    def complete(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        if tools:
            raise LLMError("tool calling needs the model server (assistant model serve)")
        inputs = self._inputs(messages, max_tokens)
        prompt_len = inputs["input_ids"].shape[1]
        options = self._sampling(max_tokens, temperature, prompt_len, response_format is not None)
        if response_format is not None:
            options.setdefault("logits_processor", []).append(self._json_processor(response_format))
        with self._lock:
            output = self.model.generate(**inputs, **options)
        new = output[0, prompt_len:]
        text = cast(str, self.tokenizer.decode(new, skip_special_tokens=True))  # one sequence
        finish = "length" if len(new) >= max_tokens else "stop"
        return Completion(text=text, finish_reason=finish, usage=Usage(prompt_len, len(new)))

    def _json_processor(self, response_format: dict[str, Any]) -> Any:
        """An xgrammar logits processor that only lets schema-valid JSON through."""
        import xgrammar as xgr

        schema = response_format.get("json_schema", {}).get("schema")
        if response_format.get("type") != "json_schema" or schema is None:
            raise LLMError(
                "response_format must be {'type': 'json_schema', 'json_schema': {'schema': ...}}"
            )
        info = xgr.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=self.model.config.vocab_size
        )
        compiled = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema))
        return xgr.contrib.hf.LogitsProcessor(compiled)
