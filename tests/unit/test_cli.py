import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from tests.fakes import FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit


def _app(model: FakeChatModel | None = None) -> App:
    return App(overrides={"embedder": HashingEmbedder(), "chat_model": model or FakeChatModel()})


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "unseen"
    docs.mkdir()
    (docs / "warranty.txt").write_text("The warranty on blenders lasts two years from delivery.\n")
    (docs / "loyalty.txt").write_text("Loyalty points expire after eighteen months.\n")
    return docs


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in ([], ["ingest"], ["ask"], ["chat"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_ingest_then_ask_json(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app(FakeChatModel().enqueue("Blenders have a two year warranty."))
    ingested = runner.invoke(main, ["ingest", str(_docs(tmp_path))], obj=app)
    assert ingested.exit_code == 0, ingested.output
    assert "ingested 2 file(s)" in ingested.output
    result = runner.invoke(main, ["ask", "--json", "how long is the warranty on blenders"], obj=app)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"conversation_id", "answer", "sources"}
    assert payload["answer"] == "Blenders have a two year warranty."
    assert Path(payload["sources"][0]["source"]).name == "warranty.txt"
    assert set(payload["sources"][0]) == {
        "source",
        "chunk_id",
        "score",
        "text",
        "kb_version",
        "quote",
        "url",
    }
    assert payload["sources"][0]["kb_version"] >= 1, (
        "the knowledge-base version is stamped on sources"
    )


def test_ask_continues_a_conversation(tmp_path: Path) -> None:
    runner = CliRunner()
    model = FakeChatModel().enqueue("Two years.", "Eighteen months.")
    app = _app(model)
    runner.invoke(main, ["ingest", str(_docs(tmp_path))], obj=app)
    first = json.loads(runner.invoke(main, ["ask", "--json", "blenders warranty"], obj=app).stdout)
    runner.invoke(
        main,
        ["ask", "--json", "--conversation", first["conversation_id"], "loyalty points expire"],
        obj=app,
    )
    assert {"role": "assistant", "content": "Two years."} in model.requests[1]["messages"]


def test_ingest_demo_loads_the_help_centre() -> None:
    result = CliRunner().invoke(main, ["ingest", "--demo"], obj=_app())
    assert result.exit_code == 0, result.output
    documents = int(result.output.split("knowledge base: ")[1].split()[0])
    assert documents >= 12


def test_ingest_without_paths_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["ingest"], obj=_app())
    assert result.exit_code == 2 and "--demo" in result.output


def test_bad_setting_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_TOP_K", "-3")
    result = CliRunner().invoke(main, ["ask", "hi"], obj=App())
    assert result.exit_code == 1
    assert "ASSISTANT_TOP_K" in result.output and "Traceback" not in result.output


def test_plain_ask_prints_answer_and_sources(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app(FakeChatModel().enqueue("Points expire after eighteen months."))
    runner.invoke(main, ["ingest", str(_docs(tmp_path))], obj=app)
    result = runner.invoke(main, ["ask", "when do loyalty points expire"], obj=app)
    assert result.exit_code == 0
    assert "Points expire after eighteen months." in result.stdout
    assert "loyalty.txt" in result.stderr
