"""Repetition control on hand-made scores: each penalty's arithmetic, the loop guard, and the batch
processor reading histories from transformers' request states."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from assistant.llm.server.repetition import (
    Markers,
    Penalties,
    SerialRepetition,
    batch_processor_class,
    loop_bans,
    penalize,
    repeats,
)

pytestmark = pytest.mark.unit

VOCAB = 8


def scores(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits() -> None:
    before = scores([2.0, -2.0, 2.0, 1.0, 0, 0, 0, 0])
    after = penalize(before, [[0]], [[1]], [Penalties(repetition=2.0)])
    assert after[0].tolist() == [1.0, -4.0, 2.0, 1.0, 0, 0, 0, 0]  # prompt token 0, answer token 1


def test_frequency_and_presence_count_only_the_answer() -> None:
    before = scores([1.0] * VOCAB)
    after = penalize(before, [[5, 5, 5]], [[3, 3, 4]], [Penalties(frequency=0.5, presence=0.25)])
    assert after[0, 3].item() == pytest.approx(1.0 - 2 * 0.5 - 0.25)
    assert after[0, 4].item() == pytest.approx(1.0 - 0.5 - 0.25)
    assert after[0, 5].item() == 1.0  # in the prompt only: OpenAI's penalties leave it alone


def test_rows_without_penalties_are_untouched_and_input_is_not_modified() -> None:
    before = scores([1.0] * VOCAB, [1.0] * VOCAB)
    after = penalize(before, [[], []], [[1], [1]], [Penalties(), Penalties(presence=1.0)])
    assert after[0].tolist() == [1.0] * VOCAB and after[1, 1].item() == 0.0
    assert before[1, 1].item() == 1.0


def test_loop_guard_bans_the_third_occurrence_of_an_ngram() -> None:
    answer = [1, 2, 3, 1, 2, 3, 1, 2]  # "1 2 3" twice; "1 2" now asks for a third "3"
    assert loop_bans(answer, 3) == [3]
    assert loop_bans(answer[:5], 3) == []  # "1 2" seen once before: a second "3" is allowed
    after = penalize(scores([0.0] * VOCAB), [[]], [answer], [Penalties(loop_ngram=3)])
    assert after[0, 3].item() == float("-inf") and after[0, 4].item() == 0.0


def test_serial_processor_splits_prompt_from_answer() -> None:
    processor = SerialRepetition(prompt_len=2, penalties=Penalties(presence=1.0))
    after = processor(torch.tensor([[6, 7, 1]]), scores([0.0] * VOCAB))
    assert after[0].tolist() == [0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def _future(
    prompt: list[int], generated: list[int], true_prompt: int = 0, **kwargs: object
) -> object:
    state = SimpleNamespace(
        request_id=f"req-{prompt}-{generated}",
        initial_tokens=prompt,
        generated_tokens=generated,
        _true_initial_tokens=true_prompt,
        logit_processor_kwargs=kwargs,
    )
    return SimpleNamespace(state=state)


def test_batch_processor_uses_each_requests_history_and_options() -> None:
    cls = batch_processor_class()
    if cls is None:
        pytest.skip("this transformers has no continuous-batching logits processors")
    processor = cls(Penalties(repetition=1.0))
    futures = [
        _future([9], [2], presence_penalty=1.0),
        # soft-reset by transformers: tokens 3, 4 were generated, then folded into the prompt
        _future([0, 3, 4], [5], true_prompt=1, presence_penalty=1.0),
        _future([1], [1]),  # server default: off here
    ]
    processor.prepare_tensor_args(futures)
    after = processor(scores([1.0] * 10, [1.0] * 10, [1.0] * 10), torch.zeros(3, dtype=torch.int32))
    assert [i for i, v in enumerate(after[0].tolist()) if v < 1] == [2]
    assert [i for i, v in enumerate(after[1].tolist()) if v < 1] == [3, 4, 5]
    assert after[2].tolist() == [1.0] * 10


NL, DOT, BANANA, APPLE = 10, 11, 12, 13
MARKERS = Markers(digits=frozenset({1, 2, 3, 4, 5}), newlines=frozenset({NL}))


def test_numbered_lines_of_one_item_are_a_loop_and_lists_of_items_are_not() -> None:
    def listing(*items: int) -> list[int]:
        return [t for i, item in enumerate(items, 1) for t in (i, DOT, item, NL)]

    bananas = listing(BANANA, BANANA, BANANA, BANANA)
    assert repeats(bananas, 4, 3, MARKERS) and not repeats(bananas, 4, 3)
    assert not repeats(listing(BANANA, APPLE, 14, 15, 16), 4, 3, MARKERS)
    # "Banana\n<n>." then "Banana" twice already: not a third time
    assert loop_bans([*listing(BANANA, BANANA), 3, DOT], 4, MARKERS) == []
    assert loop_bans([*listing(BANANA, BANANA, BANANA), 4, DOT], 4, MARKERS) == [BANANA]
    # "Banana\n" then a list number, twice: the third time no number may follow
    assert loop_bans([*listing(BANANA, BANANA)[:-1], NL], 3, MARKERS) == []
    assert loop_bans(listing(BANANA, BANANA, BANANA), 3, MARKERS) == sorted(MARKERS.digits)


def test_digits_inside_a_line_are_not_list_numbers() -> None:
    counting = [1, DOT, 2, DOT, 3, DOT, 4, DOT, 5, DOT]
    assert MARKERS.keys(counting)[:3] == [-1, DOT, 2]
    assert not repeats(counting, 4, 3, MARKERS)
