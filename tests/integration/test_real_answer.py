"""End to end with the real packaged models: ingest, ask, get a cited answer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ask(question: str, *extra: str) -> dict[str, object]:
    app = App()
    try:
        result = CliRunner().invoke(main, ["ask", "--json", *extra, question], obj=app)
    finally:
        app.close()
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_unseen_folder_then_ask_cites_the_right_file(
    unseen_docs: Path, chat_model_dir: Path
) -> None:
    ingested = CliRunner().invoke(main, ["ingest", str(unseen_docs)], obj=App())
    assert ingested.exit_code == 0, ingested.output
    payload = _ask("How long is the warranty on the espresso machine?")
    sources = [Path(str(s["source"])).name for s in payload["sources"]]  # type: ignore[union-attr]
    assert sources[0] == "espresso-machine-warranty.txt"
    assert isinstance(payload["answer"], str) and payload["answer"].strip()
    follow_up = _ask("Where are your showrooms?", "--conversation", str(payload["conversation_id"]))
    assert follow_up["conversation_id"] == payload["conversation_id"]
    assert Path(str(follow_up["sources"][0]["source"])).name == "store-locations.txt"  # type: ignore[index]


def test_demo_question_cites_a_demo_article(chat_model_dir: Path) -> None:
    assert CliRunner().invoke(main, ["ingest", "--demo"], obj=App()).exit_code == 0
    payload = _ask("How much does standard shipping cost?")
    names = [Path(str(s["source"])).name for s in payload["sources"]]  # type: ignore[union-attr]
    assert "shipping-times-and-costs.md" in names
    assert "4.95" in str(payload["answer"]) or "free" in str(payload["answer"]).lower()


def test_terminal_chat_answers_over_a_pipe(unseen_docs: Path, chat_model_dir: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    assistant = [sys.executable, "-m", "assistant"]
    subprocess.run(
        [*assistant, "ingest", str(unseen_docs)], env=env, check=True, capture_output=True
    )
    done = subprocess.run(
        [*assistant, "chat"],
        input="How do I assemble the city bicycle?\n/quit\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "you>" in done.stdout and "assistant>" in done.stdout
    assert "bicycle-assembly.txt" in done.stdout
    assert "\x1b]" not in done.stdout


def test_postgres_backend_end_to_end(
    unseen_docs: Path, chat_model_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", postgres_url)
    assert CliRunner().invoke(main, ["ingest", str(unseen_docs)], obj=App()).exit_code == 0
    payload = _ask("Which spanner do I need for the bicycle pedals?")
    assert Path(str(payload["sources"][0]["source"])).name == "bicycle-assembly.txt"  # type: ignore[index]
