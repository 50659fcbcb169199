"""`assistant eval` with fakes: question files, scoring, aggregation, reports, the command."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from assistant.evaluation import (
    Checks,
    EvalReport,
    EvaluationError,
    QuestionFileError,
    RunResult,
    Variant,
    ask_all,
    ask_baseline,
    load_questions,
    render_markdown,
    subset,
    summarise,
)
from assistant.evaluation.scoring import contains_any, normalise, percentile, source_matches
from assistant_core.chat_model import ChatMessages
from dialog.messages import Grounding, Message, Reply, Source
from tests.fakes import FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DEVSET = REPO / "benchmarks" / "devset"


# ---- question files -----------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_file_with_name_and_questions(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "kb.yaml",
        "name: Shop\nquestions:\n"
        "  - question: How much is shipping?\n    expect_any: '4.95'\n    source: shipping.md\n"
        "  - id: nope\n    question: Who is the CEO?\n    answerable: false\n",
    )
    loaded = load_questions(path)
    assert loaded.name == "Shop"
    first, second = loaded.questions
    assert (first.id, first.expect_any, first.source) == ("q1", ["4.95"], ["shipping.md"])
    assert (second.id, second.answerable) == ("nope", False)
    assert len(loaded.answerable) == len(loaded.unanswerable) == 1


def test_yaml_list_at_top_level_takes_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "plain.yml", "- question: Where?\n  source: [a.md, b.md]\n")
    loaded = load_questions(path)
    assert loaded.name == "plain" and loaded.questions[0].source == ["a.md", "b.md"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("  - question: Who?\n    answerable: false\n    expect_any: [x]\n", "takes no expect_any"),
        ("  - question: Who?\n", "give expect_any and/or source"),
        ("  - question: Who?\n    source: a.md\n    expected: x\n", "expected: Extra inputs"),
        ("  - question: ''\n    source: a.md\n", "question: String should have at least 1"),
        ("  - question: Who?\n    expect_any: ['  ']\n", "must not contain empty strings"),
        ("  - just a string\n", "expected a mapping"),
    ],
)
def test_invalid_item_names_the_question_and_its_line(
    tmp_path: Path, item: str, message: str
) -> None:
    path = _write(
        tmp_path, "bad.yaml", "questions:\n  - question: Fine?\n    source: a.md\n" + item
    )
    with pytest.raises(QuestionFileError) as err:
        load_questions(path)
    assert f"{path}, question 2 (line 4)" in str(err.value)
    assert message in str(err.value)


def test_jsonl_file_and_its_errors(tmp_path: Path) -> None:
    good = _write(
        tmp_path,
        "q.jsonl",
        '{"question": "How long?", "expect_any": ["30 days"]}\n\n'
        '{"question": "Who?", "answerable": false}\n',
    )
    assert [q.id for q in load_questions(good).questions] == ["q1", "q2"]
    broken = _write(tmp_path, "broken.jsonl", '{"question": "How long?", "source": "a"}\n{oops\n')
    with pytest.raises(QuestionFileError, match=r"broken.jsonl, line 2: not JSON"):
        load_questions(broken)
    wrong = _write(tmp_path, "wrong.jsonl", '{"question": "Q", "source": "a"}\n\n{"question": 3}\n')
    with pytest.raises(QuestionFileError, match=r"question 2 \(line 3\): question: Input should"):
        load_questions(wrong)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "dup.yaml",
            "- {id: a, question: X, source: s}\n- {id: a, question: Y, source: s}\n",
            "dup",
        ),
        ("empty.yaml", "questions: []\n", "no questions"),
        ("keys.yaml", "title: x\nquestions: []\n", "unknown top-level key(s) title"),
        ("broken.yaml", "questions: [\n", "not valid YAML"),
        ("notes.txt", "question: x\n", ".yaml, .yml or .jsonl"),
        ("scalar.yaml", "questions: 3\n", "must be a list"),
    ],
)
def test_file_level_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(QuestionFileError, match=re.escape(message)):
        load_questions(_write(tmp_path, name, text))


def test_subset_keeps_the_proportion_and_the_order(tmp_path: Path) -> None:
    lines = [f"- {{id: a{i}, question: A{i}, source: s}}" for i in range(8)]
    lines += [f"- {{id: u{i}, question: U{i}, answerable: false}}" for i in range(2)]
    loaded = load_questions(_write(tmp_path, "q.yaml", "\n".join(lines) + "\n"))
    assert [q.id for q in subset(loaded, 5).questions] == ["a0", "a2", "a4", "a6", "u0"]
    assert [q.id for q in subset(loaded, 2).questions] == ["a0", "u0"]
    assert subset(loaded, 50) is loaded


# ---- scoring ------------------------------------------------------------------------------------


def test_matching_rules() -> None:
    assert source_matches("refunds.md", "/srv/kb/help/refunds.md")
    assert source_matches("help/Refunds.md", "/srv/kb/help/refunds.md")
    assert not source_matches("other/refunds.md", "/srv/kb/help/refunds.md")
    assert not source_matches("funds.md", "/srv/kb/help/refunds.md")
    assert normalise("Use  `str.rstrip()`\nor “x”") == "use str.rstrip() or x"
    assert contains_any("Call **RSTRIP**", ["rstrip"])
    assert contains_any("It’s 5–7 days", ["it's 5-7"])
    assert not contains_any("strip", ["rstrip"])
    assert percentile([], 0.5) is None
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0


@dataclass
class FakeFact:
    kind: str
    text: str


def _fake_checks() -> Checks:
    """Numbers are facts; a fact is supported when some evidence text contains it."""

    def unsupported(answer: str, evidence: Sequence[str]) -> list[FakeFact]:
        joined = "\n".join(evidence)
        return [FakeFact("number", n) for n in re.findall(r"\d+", answer) if n not in joined]

    return Checks(unsupported, lambda text: "loop loop loop" in text)


class ScriptedAssistant:
    """Replies by question text; raises for the ones scripted as errors."""

    def __init__(self, replies: dict[str, Reply | Exception]) -> None:
        self.replies = replies
        self.conversations: list[str] = []

    def handle(self, message: Message) -> Reply:
        self.conversations.append(message.conversation_id)
        assert message.channel == "eval"
        reply = self.replies[message.text]
        if isinstance(reply, Exception):
            raise reply
        return reply


def _source(path: str, text: str, quote: str = "") -> Source:
    return Source(source=path, chunk_id=1, score=0.8, text=text, quote=quote)


QUESTIONS = """
- id: cost
  question: How much is shipping?
  expect_any: ["4.95"]
  source: shipping.md
- id: window
  question: How long can I return?
  expect_any: [30 days]
  source: returns.md
- id: quoted
  question: When is the refund issued?
  expect_any: [5-7 business days]
  source: refunds.md
- id: looping
  question: How do I reset my password?
  expect_any: [reset link]
- id: broken
  question: Do you ship abroad?
  source: shipping.md
- id: ceo
  question: Who is the CEO?
  answerable: false
- id: wrong-abstain
  question: What are your hours?
  answerable: false
"""


def _replies() -> dict[str, Reply | Exception]:
    abstain = Grounding(action="abstained")
    return {
        "How much is shipping?": Reply(
            "c", "Shipping costs 4.95 euros.", [_source("/kb/shipping.md", "Costs 4.95 euros.")]
        ),
        "How long can I return?": Reply("c", "I don't know.", [], grounding=abstain),
        "When is the refund issued?": Reply(
            "c",
            "Refunds take a while.",
            [
                _source("/kb/other.md", "Nothing."),
                _source("/kb/refunds.md", "Within 5–7 business days.", "Within 5–7 business days."),
            ],
        ),
        "How do I reset my password?": Reply(
            "c", "loop loop loop 12", [_source("/kb/password.md", "Click the reset link.")]
        ),
        "Do you ship abroad?": ConnectionError("model down"),
        "Who is the CEO?": Reply("c", "The CEO is Ada, since 2019.", [_source("/kb/a.md", "x")]),
        "What are your hours?": Reply("c", "Sorry, nothing relevant.", []),
    }


def _retrieve(question: str) -> list[str]:
    return {"How much is shipping?": ["/kb/x.md"] * 5 + ["/kb/shipping.md"]}.get(
        question, ["/kb/returns.md", "/kb/refunds.md"]
    )


def test_ask_all_scores_every_kind_of_outcome(tmp_path: Path) -> None:
    questions = load_questions(_write(tmp_path, "q.yaml", QUESTIONS)).questions
    assistant = ScriptedAssistant(_replies())
    seen: list[str] = []
    items = ask_all(
        assistant,
        questions,
        name="default",
        retriever=_retrieve,
        checks=_fake_checks(),
        k=5,
        on_item=lambda name, item: seen.append(f"{name}:{item.id}"),
    )
    by_id = {i.id: i for i in items}
    assert len(set(assistant.conversations)) == len(questions), "a fresh conversation each"
    assert seen[0] == "default:cost" and len(seen) == len(questions)

    cost = by_id["cost"]
    assert (
        cost.answer_hit
        and cost.citation_rank == 1
        and cost.problems == ["expected source not in the top 5 passages"]
    )
    assert cost.retrieval_rank is None and cost.latency_ms >= 0

    window = by_id["window"]
    assert window.abstained and window.answer_hit is False and window.retrieval_rank == 1
    assert window.problems == ["abstained on an answerable question"]

    quoted = by_id["quoted"]
    assert quoted.answer_hit, "the quote of a source counts for the answer hit"
    assert (quoted.citation_rank, quoted.retrieval_rank) == (2, 2)
    assert quoted.quotes == ["Within 5–7 business days."]

    looping = by_id["looping"]
    assert looping.degenerate and looping.invented == ["12 (number)"]
    assert "degenerate answer" in looping.problems

    assert by_id["broken"].error == "ConnectionError: model down"
    assert by_id["broken"].problems == ["error: ConnectionError: model down"]

    ceo = by_id["ceo"]
    assert not ceo.abstained and ceo.invented == ["2019 (number)"]
    assert ceo.problems == ["answered an unanswerable question", "invented facts: 2019 (number)"]

    assert by_id["wrong-abstain"].abstained, "no passages and no grounding verdict: abstained"
    assert by_id["wrong-abstain"].problems == []

    summary = summarise(questions, items, k=5, citations=3)
    assert summary["questions"] == 7
    assert (summary["answerable"], summary["unanswerable"]) == (5, 2)
    assert (summary["answered"], summary["answered_rate"]) == (3, 0.6)
    assert (summary["answer_hits"], summary["answer_hit_questions"]) == (2, 4)
    assert summary["answer_hit_rate"] == 0.5
    assert (summary["source_hits_at_k"], summary["source_questions"]) == (2, 4)
    assert (summary["citation_hits"], summary["citation_hit_rate"]) == (2, 0.5)
    assert (summary["abstained_unanswerable"], summary["abstention_rate"]) == (1, 0.5)
    assert (summary["invented_answers"], summary["invented_facts"]) == (2, 2)
    assert (summary["degenerate_answers"], summary["errors"]) == (1, 1)
    assert summary["latency_ms_p50"] is not None and summary["latency_ms_p95"] is not None
    json.dumps(summary)


def test_rates_are_none_without_questions_of_their_kind(tmp_path: Path) -> None:
    questions = load_questions(
        _write(tmp_path, "q.yaml", "- {question: Who, answerable: false}\n")
    ).questions
    items = ask_all(
        ScriptedAssistant({"Who": Reply("c", "", [], grounding=Grounding(action="abstained"))}),
        questions,
        name="x",
        checks=_fake_checks(),
    )
    summary = summarise(questions, items, k=5, citations=3)
    assert summary["answered_rate"] is None and summary["answer_hit_rate"] is None
    assert summary["source_hit_at_k"] is None and summary["abstention_rate"] == 1.0


def test_baseline_checks_facts_against_the_expected_document(tmp_path: Path) -> None:
    questions = load_questions(_write(tmp_path, "q.yaml", QUESTIONS)).questions[:2]
    questions = [*questions, load_questions(_write(tmp_path, "u.yaml", QUESTIONS)).questions[5]]
    model = FakeChatModel().enqueue(
        "It is 4.95 euros, or 7 in winter.", "30 days.", "The CEO is Bob since 1999."
    )
    gold = {"cost": ["Shipping costs 4.95 euros."], "window": ["Returns within 30 days."]}
    items = ask_baseline(
        model,
        questions,
        gold=lambda q: gold.get(q.id, []),
        checks=_fake_checks(),
        max_tokens=40,
    )
    assert [i.invented for i in items] == [["7 (number)"], [], ["1999 (number)"]]
    assert [i.answer_hit for i in items] == [True, True, None]
    assert model.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "How much is shipping?",
    }
    assert model.requests[0]["max_tokens"] == 40
    assert all("answered an unanswerable" not in p for i in items for p in i.problems)
    assert all("not in the top" not in p for i in items for p in i.problems)


def test_variant_parsing() -> None:
    assert Variant.parse("retrieval=vector, top_k=5").overrides == {
        "retrieval": "vector",
        "top_k": "5",
    }
    assert Variant.parse("ASSISTANT_MIN_SCORE=0.3").name == "min_score=0.3"
    assert Variant().name == "configured settings"
    for bad, message in [("top_k", "KEY=VALUE"), ("colour=red", "not a setting"), (",", "KEY")]:
        with pytest.raises(EvaluationError, match=message):
            Variant.parse(bad)


def test_markdown_report_has_a_column_per_run_and_the_failures(tmp_path: Path) -> None:
    questions = load_questions(_write(tmp_path, "q.yaml", QUESTIONS)).questions
    items = ask_all(
        ScriptedAssistant(_replies()),
        questions,
        name="a",
        retriever=_retrieve,
        checks=_fake_checks(),
    )
    run = RunResult(
        "retrieval=vector",
        {"retrieval": "vector"},
        summarise(questions, items, k=5, citations=3),
        items,
    )
    report = EvalReport("Shop", "q.yaml", 7, 5, 2, None, [run, run], None, 5, "now", 1.0)
    text = render_markdown(report)
    assert "| metric | retrieval=vector | retrieval=vector |" in text
    assert "| answered (answerable, not abstained) | 0.60 (3/5) | 0.60 (3/5) |" in text
    assert "| source hit@5 | 0.50 (2/4) |" in text
    assert "| answers with invented facts | 2 (2 facts) |" in text
    assert "### Failures: retrieval=vector (5 of 7)" in text
    assert (
        "| ceo | Who is the CEO? | The CEO is Ada, since 2019. | answered an unanswerable" in text
    )
    assert "Failures" not in render_markdown(report, with_failures=False)
    again = EvalReport.from_json(json.loads(json.dumps(report.as_json())))
    assert render_markdown(again) == text


# ---- the command, on a real dialog manager with fake models --------------------------------------


def first_passage_sentence(messages: ChatMessages) -> str:
    """The first sentence of the first passage the model is given; "I don't know" without
    passages."""
    found = re.search(r"<passage>\s*(.+?[.!?])", str(messages[-1]["content"]), re.S)
    return found.group(1) if found else "I don't know, sorry."


def echo_model() -> FakeChatModel:
    return FakeChatModel(default=first_passage_sentence)


def _corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.txt").write_text("Blenders carry a warranty of two years from delivery.\n")
    (docs / "loyalty.txt").write_text("Loyalty points expire after eighteen months.\n")
    return docs


EVAL_FILE = """
name: Tiny
questions:
  - question: How long is the warranty on blenders?
    expect_any: [two years]
    source: warranty.txt
  - question: When do loyalty points expire?
    expect_any: [eighteen months]
    source: loyalty.txt
  - question: Zebra quantum saxophone?
    answerable: false
"""


def test_eval_command_compares_settings_on_a_fresh_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("ASSISTANT_DOMAIN", "none")
    monkeypatch.setenv("ASSISTANT_MIN_SCORE", "0.3")
    model = echo_model()
    app = App(overrides={"embedder": HashingEmbedder(), "chat_model": model})
    path = _write(tmp_path, "tiny.yaml", EVAL_FILE)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(path),
            "--corpus",
            str(_corpus(tmp_path)),
            "--compare",
            "retrieval=vector",
            "--compare",
            "retrieval=hybrid,top_k=2",
            "--out",
            str(out),
        ],
        obj=app,
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "eval.json").read_text())
    assert [r["name"] for r in payload["runs"]] == ["retrieval=vector", "retrieval=hybrid,top_k=2"]
    assert payload["runs"][1]["settings"] == {"retrieval": "hybrid", "top_k": "2"}
    assert payload["baseline"]["name"] == "model alone"
    assert (payload["questions"], payload["answerable"], payload["unanswerable"]) == (3, 2, 1)
    for run in payload["runs"]:
        summary = run["summary"]
        # what the dialog manager answers is its own tests' business; retrieval is deterministic
        assert summary["source_hit_at_k"] == 1.0 and summary["errors"] == 0
        assert summary["answerable"] == 2 and summary["latency_ms_p50"] is not None
        assert {i["id"] for i in run["items"]} == {"q1", "q2", "q3"}
    assert payload["runs"][1]["summary"]["citations"] == 2
    baseline = payload["baseline"]["summary"]
    assert baseline["abstention_rate"] is None and baseline["answered_rate"] is None
    assert baseline["questions"] == 3
    markdown = (out / "eval.md").read_text()
    assert markdown.startswith("## Evaluation: Tiny")
    assert "| metric | retrieval=vector | retrieval=hybrid,top_k=2 | model alone |" in markdown
    assert "| metric |" in result.stdout and "Failures" not in result.stdout
    assert not (data_dir / "assistant.db").exists(), "the configured knowledge base is untouched"


def test_bench_gives_a_knowledge_base_per_chunking_and_shares_the_models(tmp_path: Path) -> None:
    from assistant.evaluation.runner import Bench
    from assistant_core.settings import load_settings

    model, embedder = echo_model(), HashingEmbedder()
    overrides = {"embedder": embedder, "chat_model": model}
    with Bench(
        load_settings(domain="none"), corpus=_corpus(tmp_path), overrides=overrides
    ) as bench:
        default = bench.components(Variant())
        vector = bench.components(Variant({"retrieval": "vector"}))
        small = bench.components(Variant({"chunk_size": "300"}))
        assert default.settings.data_dir == vector.settings.data_dir
        assert small.settings.data_dir != default.settings.data_dir
        assert vector.settings.retrieval == "vector" and small.settings.chunk_size == 300
        assert default.settings.models_dir == load_settings().models_dir
        assert default.knowledge.count() == small.knowledge.count() == (2, 2)
        assert vector.chat_model is model and vector.embedder is embedder
        workdir = default.settings.data_dir.parent
    assert not workdir.exists(), "the temporary knowledge bases are removed"


def test_eval_command_json_on_the_configured_knowledge_base(tmp_path: Path) -> None:
    app = App(overrides={"embedder": HashingEmbedder(), "chat_model": echo_model()})
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(_corpus(tmp_path))], obj=app).exit_code == 0
    path = _write(tmp_path, "tiny.yaml", EVAL_FILE)
    result = runner.invoke(
        main, ["eval", str(path), "--json", "--no-baseline", "--limit", "2"], obj=app
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["baseline"] is None and payload["corpus"] is None
    assert payload["questions"] == 2 and payload["runs"][0]["name"] == "configured settings"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compare", "top_k=0"], "ASSISTANT_TOP_K"),
        (["--compare", "nonsense"], "expected KEY=VALUE"),
    ],
)
def test_eval_command_bad_settings_are_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    app = App(overrides={"embedder": HashingEmbedder(), "chat_model": echo_model()})
    path = _write(tmp_path, "tiny.yaml", EVAL_FILE)
    result = CliRunner().invoke(main, ["eval", str(path), *args], obj=app)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_eval_command_on_an_empty_knowledge_base_says_what_to_do(tmp_path: Path) -> None:
    app = App(overrides={"embedder": HashingEmbedder(), "chat_model": echo_model()})
    path = _write(tmp_path, "tiny.yaml", EVAL_FILE)
    result = CliRunner().invoke(main, ["eval", str(path)], obj=app)
    assert result.exit_code == 1 and "knowledge base is empty" in result.output
    assert "--corpus" in result.output


def test_eval_command_reports_a_bad_question_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "- question: Who?\n")
    result = CliRunner().invoke(main, ["eval", str(path)], obj=App())
    assert result.exit_code == 1 and "question 1 (line 1)" in result.output


# ---- the development set ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "corpus", "answerable", "unanswerable"),
    [
        ("python_docs.yaml", DEVSET / "python_docs", 40, 10),
        ("help_centre.yaml", REPO / "assistant" / "demo" / "help_centre", 15, 5),
    ],
)
def test_devset_expectations_are_verbatim_in_their_documents(
    name: str, corpus: Path, answerable: int, unanswerable: int
) -> None:
    loaded = load_questions(DEVSET / name)
    assert len(loaded.answerable) >= answerable and len(loaded.unanswerable) >= unanswerable
    for question in loaded.answerable:
        assert question.expect_any and question.source, question.id
        texts = []
        for source in question.source:
            assert (corpus / source).is_file(), f"{question.id}: {source} missing"
            texts.append(normalise((corpus / source).read_text()))
        for expected in question.expect_any:
            assert any(normalise(expected) in t for t in texts), f"{question.id}: {expected!r}"


def test_devset_corpus_is_small_plain_text_with_titles() -> None:
    files = sorted((DEVSET / "python_docs").glob("*.txt"))
    assert 50 <= len(files) <= 80
    assert sum(f.stat().st_size for f in files) < 600_000
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.strip() and len(first) < 80, path.name
