"""`assistant init` in a fresh folder, then ingest, a question answered from the new company's
documents, and its example tool; `assistant check` naming file, line and problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit

ASSISTANT = [sys.executable, "-m", "assistant"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `assistant` command in `cwd`, configured only by the folder's assistant.toml."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"ASSISTANT_DATA_DIR", "ASSISTANT_CONFIG", "ASSISTANT_DOMAIN"}
    }
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [*ASSISTANT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`assistant init` run as a user would, then its documents ingested."""
    created = _run(["init", "acme-kettles"], tmp_path)
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "acme-kettles"
    assert "cd acme-kettles" in created.stdout and "assistant ingest docs/" in created.stdout
    ingested = _run(["ingest", "docs/"], folder)
    assert ingested.returncode == 0, ingested.stderr
    assert "ingested 1 file(s)" in ingested.stdout
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ASSISTANT_DATA_DIR")
    monkeypatch.delenv("ASSISTANT_DOMAIN")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(folder / "assistant.toml"))
    return folder


def test_init_scaffolds_a_project_that_answers_from_its_own_documents(project: Path) -> None:
    assert {p.name for p in project.iterdir()} >= {
        "assistant.toml",
        "domain.yaml",
        "tools.py",
        "docs",
        "eval.jsonl",
        ".assistant",
    }
    assert "Acme Kettles" in (project / "domain.yaml").read_text()
    model = FakeChatModel(complete_default="{}").enqueue(
        "The support team answers from Monday to Friday, 9:00 to 17:00."
    )
    result = CliRunner().invoke(
        main,
        ["ask", "--json", "When is the support team available?"],
        obj=App({"chat_model": model}),
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["answer"] == "The support team answers from Monday to Friday, 9:00 to 17:00."
    assert payload["sources"][0]["source"].endswith("docs/contact-and-opening-hours.md")
    system = model.requests[0]["messages"][0]["content"]
    assert "assistant of Acme Kettles" in system and "friendly and concise" in system
    assert "Northwind" not in system


def test_the_example_tool_runs_after_the_customer_confirms(project: Path) -> None:
    runner, app = CliRunner(), App({"chat_model": FakeChatModel(complete_default="{}")})

    def say(text: str, conversation: str = "") -> dict[str, object]:
        args = ["ask", "--json", *(["--conversation", conversation] if conversation else []), text]
        result = runner.invoke(main, [*args], obj=app)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = say("Could you call me back please?")
    cid = str(first["conversation_id"])
    assert first["answer"] == "What's your name?"
    assert say("Ann Lee", cid)["answer"] == "Which phone number should we call?"
    assert say("+44 20 7946 0958", cid)["answer"] == "What should we call you about?"
    confirm = say("my kettle leaks", cid)["answer"]
    assert "call Ann Lee at +442079460958 about: my kettle leaks" in str(confirm)
    assert not (project / "callbacks.jsonl").exists()
    done = say("yes", cid)
    assert "we'll call you at +442079460958" in str(done["answer"])
    (record,) = [
        json.loads(line) for line in (project / "callbacks.jsonl").read_text().splitlines()
    ]
    assert record["name"] == "Ann Lee" and record["conversation_id"] == cid


def test_check_passes_on_a_fresh_project_and_names_file_line_and_problem(
    tmp_path: Path,
) -> None:
    assert _run(["init", "shop"], tmp_path).returncode == 0
    folder = tmp_path / "shop"
    ok = _run(["check"], folder)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok.stderr
    domain = folder / "domain.yaml"
    lines = domain.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip() == "type: phone")
    lines[at] = lines[at].replace("phone", "telephone")
    lines.append("mystery: 1")
    domain.write_text("\n".join(lines) + "\n")
    (folder / "assistant.toml").write_text((folder / "assistant.toml").read_text() + "top_k = 0\n")
    bad = _run(["check"], folder)
    assert bad.returncode == 1
    toml_line = len((folder / "assistant.toml").read_text().splitlines())
    assert f"assistant.toml:{toml_line}: top_k: Input should be greater than or equal to 1" in (
        bad.stderr
    )
    (folder / "assistant.toml").write_text(
        (folder / "assistant.toml").read_text().replace("top_k = 0\n", "")
    )
    bad = _run(["check"], folder)
    assert f"domain.yaml:{at + 1}: slots.phone.type: Input should be" in bad.stderr
    assert f"domain.yaml:{len(lines)}: mystery: Extra inputs are not permitted" in bad.stderr


def test_init_refuses_to_overwrite_and_scaffolds_the_demo_on_request(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(tmp_path / "a")]).exit_code == 0
    again = runner.invoke(main, ["init", str(tmp_path / "a")])
    assert again.exit_code == 1 and "--force" in again.output
    demo = runner.invoke(main, ["init", "--demo", str(tmp_path / "d")])
    assert demo.exit_code == 0
    assert 'domain = "demo"' in (tmp_path / "d" / "assistant.toml").read_text()
    assert len(list((tmp_path / "d" / "docs").glob("*.md"))) >= 12
