"""`assistant eval` end to end with the real packaged models, on a few development-set questions
over documents the assistant was never tuned on (the whole set is `python -m benchmarks.eval`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from assistant.cli import App, main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVSET = Path(__file__).resolve().parents[2] / "benchmarks" / "devset"
FILES = ["pass.txt", "lambda.txt", "del.txt", "for.txt", "shifting.txt", "nonlocal.txt"]
QUESTIONS = ["pass", "lambda-statements", "del-name", "for-else", "no-phone", "no-license-price"]


@pytest.fixture
def small_devset(tmp_path: Path) -> tuple[Path, Path]:
    """Six questions of the Python-docs set and the six documents they (and their neighbours)
    come from."""
    corpus = tmp_path / "python_docs"
    corpus.mkdir()
    for name in FILES:
        shutil.copy(DEVSET / "python_docs" / name, corpus / name)
    full = yaml.safe_load((DEVSET / "python_docs.yaml").read_text())
    chosen = [q for q in full["questions"] if q["id"] in QUESTIONS]
    assert len(chosen) == len(QUESTIONS)
    questions = tmp_path / "questions.yaml"
    questions.write_text(yaml.safe_dump({"name": "CI", "questions": chosen}))
    return questions, corpus


def test_eval_on_unseen_documents_with_the_real_model(
    small_devset: tuple[Path, Path],
    chat_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSISTANT_DOMAIN", "none")
    monkeypatch.setenv("ASSISTANT_MAX_NEW_TOKENS", "80")
    questions, corpus = small_devset
    out = tmp_path / "out"
    app = App()
    try:
        result = CliRunner().invoke(
            main,
            ["eval", str(questions), "--corpus", str(corpus), "--out", str(out), "--no-baseline"],
            obj=app,
        )
    finally:
        app.close()
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    markdown = (out / "eval.md").read_text()
    assert "| metric | configured settings |" in markdown and report["baseline"] is None

    (run,) = report["runs"]
    summary, items = run["summary"], {i["id"]: i for i in run["items"]}
    assert (report["answerable"], report["unanswerable"]) == (4, 2)
    assert set(items) == set(QUESTIONS)
    assert summary["errors"] == 0
    assert summary["source_hit_at_k"] == 1.0, "each expected document is among the top 5"
    assert summary["latency_ms_p50"] > 0 and summary["latency_ms_p95"] >= summary["latency_ms_p50"]
    for item in items.values():
        assert item["answer"].strip(), item
        assert item["grounding"] in {"passed", "extractive", "abstained"}, item

    # what the grounding work promises on documents the assistant never saw
    assert summary["degenerate_answers"] == 0, run["items"]
    assert summary["invented_answers"] == 0, run["items"]
    assert items["no-phone"]["abstained"] and items["no-license-price"]["abstained"]
    assert summary["answered"] >= 3, "answerable questions are answered, not abstained"
