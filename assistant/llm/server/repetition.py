"""Repetition control: penalties and a loop guard applied to the logits, so a small model's answer
cannot run into "0 0 0 0 ..." or the same option forty times.

transformers' continuous batching drops `RepetitionPenaltyLogitsProcessor` (marked unsupported) and
hands other plain processors only each request's *last* token, so `repetition_penalty` and
`no_repeat_ngram_size` cannot work inside it as they are. What it does offer is the
`ContinuousBatchingLogitsProcessor` interface: `prepare_tensor_args` sees every scheduled request's
state (prompt and generated tokens) just before the forward pass, `__call__` the batch's scores
after it. `BatchRepetition` uses that pair; `SerialRepetition` is the same rule for
`model.generate`.

Semantics (what clients know from elsewhere):
- `repetition_penalty` (vLLM, HF): logits of tokens seen in the prompt or the answer are divided by
  it when positive, multiplied when negative; 1 is off.
- `frequency_penalty`, `presence_penalty` (OpenAI): minus `frequency * count + presence * (count >
  0)` over the answer's tokens; 0 is off.
- `loop_ngram` (ours): no run of that many tokens may appear a third time in the answer, list
  numbers at the start of a line counting as equal ("7. Banana", "8. Banana").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import torch

KWARGS: dict[str, type] = {
    "repetition_penalty": float,
    "frequency_penalty": float,
    "presence_penalty": float,
    "loop_ngram": int,
}
"""Per-request options the batch accepts (through `add_request(**kwargs)`)."""

LOOP_REPEATS = 2
"""How often one n-gram may occur in an answer before the token completing it again is banned."""


@dataclass(frozen=True)
class Penalties:
    """One request's repetition control; the defaults switch everything off."""

    repetition: float = 1.0
    frequency: float = 0.0
    presence: float = 0.0
    loop_ngram: int = 0

    @property
    def active(self) -> bool:
        return (
            self.repetition != 1.0
            or self.frequency != 0.0
            or self.presence != 0.0
            or self.loop_ngram > 0
        )

    def kwargs(self) -> dict[str, Any]:
        """As `add_request` keyword arguments (types exactly as the batch checks them)."""
        return {
            "repetition_penalty": float(self.repetition),
            "frequency_penalty": float(self.frequency),
            "presence_penalty": float(self.presence),
            "loop_ngram": int(self.loop_ngram),
        }

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], default: Penalties) -> Penalties:
        return replace(
            default,
            repetition=kwargs.get("repetition_penalty", default.repetition),
            frequency=kwargs.get("frequency_penalty", default.frequency),
            presence=kwargs.get("presence_penalty", default.presence),
            loop_ngram=kwargs.get("loop_ngram", default.loop_ngram),
        )


@dataclass(frozen=True)
class Markers:
    """Which token ids are digits and which end a line: "7. Banana" and "8. Banana" are the same
    line to the loop guard, so a numbered list of one item over and over is a loop too."""

    digits: frozenset[int] = frozenset()
    newlines: frozenset[int] = frozenset()

    @classmethod
    def of(cls, tokenizer: Any) -> Markers:
        """From a tokenizer's vocabulary (once per engine: about half a second for 50k tokens)."""
        digits, newlines = set(), set()
        for token_id in range(len(tokenizer)):
            text = tokenizer.decode([token_id])
            if text.strip().isdigit():
                digits.add(token_id)
            if text.endswith("\n"):
                newlines.add(token_id)
        return cls(frozenset(digits), frozenset(newlines))

    def keys(self, output: Sequence[int]) -> list[int]:
        """The answer with each line's leading number (list marker) replaced by -1."""
        keys, line_start = [], True
        for token in output:
            if line_start and token in self.digits:
                keys.append(-1)
                continue
            keys.append(token)
            line_start = token in self.newlines
        return keys


NO_MARKERS = Markers()


class LoopGuard:
    """One answer's n-grams, kept up to date token by token: what may not come next costs O(1)
    per generated token instead of a scan of the whole answer."""

    def __init__(self, n: int, markers: Markers = NO_MARKERS) -> None:
        self.n, self.markers = n, markers
        self.length = 0
        self._keys: list[int] = []
        self._line_start = True
        self._next: dict[tuple[int, ...], dict[int, int]] = {}

    def extend(self, tokens: Sequence[int]) -> None:
        """Take the answer's new tokens (those after `length`)."""
        for token in tokens:
            key = -1 if self._line_start and token in self.markers.digits else token
            if key != -1:
                self._line_start = token in self.markers.newlines
            self._keys.append(key)
            if len(self._keys) >= self.n:
                prefix = tuple(self._keys[len(self._keys) - self.n : -1])
                follows = self._next.setdefault(prefix, {})
                follows[key] = follows.get(key, 0) + 1
        self.length += len(tokens)

    def bans(self) -> list[int]:
        """Tokens that would make an n-gram occur `LOOP_REPEATS + 1` times."""
        if self.n <= 0 or len(self._keys) < self.n - 1:
            return []
        prefix = tuple(self._keys[len(self._keys) - self.n + 1 :])
        banned = {k for k, c in self._next.get(prefix, {}).items() if c >= LOOP_REPEATS}
        if -1 in banned:
            banned.discard(-1)
            banned |= self.markers.digits
        return sorted(banned)


def loop_bans(output: Sequence[int], n: int, markers: Markers = NO_MARKERS) -> list[int]:
    """Tokens that would complete an n-gram already seen `LOOP_REPEATS` times in `output` (list
    numbers count as equal: then every digit is banned at that point)."""
    guard = LoopGuard(n, markers)
    guard.extend(output)
    return guard.bans()


def repeats(output: Sequence[int], n: int, times: int, markers: Markers = NO_MARKERS) -> bool:
    """Whether some n-gram occurs `times` times (list numbers equal): a degenerate loop."""
    keys, seen = markers.keys(output), dict[tuple[int, ...], int]()
    for start in range(len(keys) - n + 1):
        gram = tuple(keys[start : start + n])
        seen[gram] = seen.get(gram, 0) + 1
        if seen[gram] >= times:
            return True
    return False


SCORE_BOUND = 1e4
"""Penalized scores stay within this: far past any real logit, yet finite after dividing by the
smallest temperature that samples (`batching.SAMPLING_EPS`)."""


def penalize(
    scores: torch.Tensor,
    prompts: Sequence[Sequence[int]],
    outputs: Sequence[Sequence[int]],
    penalties: Sequence[Penalties],
    bans: Sequence[Sequence[int]] | None = None,
    markers: Markers = NO_MARKERS,
) -> torch.Tensor:
    """Scores [rows, vocab] with each row's penalties applied (loop-guard bans computed here
    unless given); only the tokens a row has seen are touched."""
    if bans is None:
        bans = [
            loop_bans(out, p.loop_ngram, markers) for out, p in zip(outputs, penalties, strict=True)
        ]
    pairs: list[tuple[int, Sequence[int], Sequence[int], Penalties]] = [
        (i, prompts[i], outputs[i], p)
        for i, p in enumerate(penalties)
        if p.repetition != 1.0 or p.frequency != 0.0 or p.presence != 0.0
    ]
    if not pairs and not any(bans):
        return scores
    scores = scores.clone()
    vocab = scores.shape[-1]
    rep_rows, rep_ids, rep_by = [], [], []
    out_rows, out_ids, freq = [], [], []
    for i, prompt, output, p in pairs:
        answer: dict[int, int] = {}
        for token in output:
            if 0 <= token < vocab:
                answer[token] = answer.get(token, 0) + 1
        if p.repetition != 1.0:
            seen = answer.keys() | {t for t in prompt if 0 <= t < vocab}
            rep_rows += [i] * len(seen)
            rep_ids += list(seen)
            rep_by += [p.repetition] * len(seen)
        if p.frequency != 0.0 or p.presence != 0.0:
            out_rows += [i] * len(answer)
            out_ids += list(answer)
            freq += [p.frequency * c + p.presence for c in answer.values()]
    device = scores.device
    if rep_ids:
        index = (torch.tensor(rep_rows, device=device), torch.tensor(rep_ids, device=device))
        values = scores[index].float()
        by = torch.tensor(rep_by, device=device)
        penalized = torch.where(values > 0, values / by, values * by)
        # a penalty near 0 would push a score to inf, and the sampler's probabilities to NaN
        scores[index] = penalized.clamp(-SCORE_BOUND, SCORE_BOUND).to(scores.dtype)
    if out_ids:
        index = (torch.tensor(out_rows, device=device), torch.tensor(out_ids, device=device))
        scores[index] = (scores[index].float() - torch.tensor(freq, device=device)).to(scores.dtype)
    for i, banned in enumerate(bans):
        if banned:
            scores[i, list(banned)] = float("-inf")
    return scores


class SerialRepetition:
    """For `model.generate`: the prompt is the first `prompt_len` ids of each row, the rest is the
    answer."""

    def __init__(
        self, prompt_len: int, penalties: Penalties, markers: Markers = NO_MARKERS
    ) -> None:
        self.prompt_len, self.penalties, self.markers = prompt_len, penalties, markers
        self._guards: list[LoopGuard] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ids = input_ids.tolist()
        outputs = [row[self.prompt_len :] for row in ids]
        if len(self._guards) != len(ids):
            self._guards = [LoopGuard(self.penalties.loop_ngram, self.markers) for _ in ids]
        for guard, output in zip(self._guards, outputs, strict=True):
            guard.extend(output[guard.length :])
        prompts = [row[: self.prompt_len] for row in ids]
        penalties = [self.penalties] * len(ids)
        bans = [guard.bans() for guard in self._guards]
        # still the float scores transformers passed in (LogitsProcessor's signature)
        return cast(torch.FloatTensor, penalize(scores, prompts, outputs, penalties, bans))


def batch_processor_class() -> type | None:
    """The continuous-batching processor, or None where this transformers has no such interface."""
    try:
        from transformers.generation.continuous_batching.cb_logits_processors import (
            ContinuousBatchingLogitsProcessor,
        )
    except ImportError:
        return None

    class BatchRepetition(ContinuousBatchingLogitsProcessor):
        """Penalties inside transformers' batch: histories read at scheduling, applied to the
        scores.

        Needs the forward pass to follow its own scheduling step (synchronous batching, no CUDA
        graph replay): `Engine` switches those off for a batch that carries it.
        """

        supported_kwargs = KWARGS
        ignored_kwargs = ()

        def __init__(self, default: Penalties, markers: Markers = NO_MARKERS) -> None:
            self.default, self.markers = default, markers
            self._pending: tuple[list[Any], list[Any], list[Penalties], list[list[int]]] | None
            self._pending = None
            self._guards: dict[str, LoopGuard] = {}

        def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
            int32_tensor.fill_(0)

        def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
            prompts, outputs, penalties, bans = [], [], [], []
            guards: dict[str, LoopGuard] = {}
            for future in requests_with_new_token:
                state = future.state
                penalty = Penalties.from_kwargs(state.logit_processor_kwargs, self.default)
                prompt, generated = state.initial_tokens, state.generated_tokens
                true_prompt = getattr(state, "_true_initial_tokens", 0) or len(prompt)
                if true_prompt < len(prompt):  # soft reset: the answer so far is in the prompt
                    generated = prompt[true_prompt:] + list(generated)
                    prompt = prompt[:true_prompt]
                guard = self._guards.get(state.request_id)
                if guard is None or guard.length > len(generated):
                    guard = LoopGuard(penalty.loop_ngram, self.markers)
                guard.extend(generated[guard.length :])
                guards[state.request_id] = guard
                prompts.append(prompt)
                outputs.append(generated)
                penalties.append(penalty)
                bans.append(guard.bans())
            self._guards = guards  # requests that left the batch are forgotten (rebuilt if back)
            self._pending = (prompts, outputs, penalties, bans)
            return torch.arange(len(requests_with_new_token), dtype=torch.int32)

        def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
            if self._pending is None:  # a warm-up pass: nothing was scheduled through us
                return scores
            prompts, outputs, penalties, bans = self._pending
            self._pending = None
            rows = len(penalties)
            head = penalize(scores[:rows], prompts, outputs, penalties, bans)
            # padded rows past the batch's requests are never sampled: leave them
            return torch.cat([head, scores[rows:]]) if scores.shape[0] > rows else head

    return BatchRepetition
