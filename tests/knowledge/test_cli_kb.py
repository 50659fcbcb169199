import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from knowledge.index import VectorIndex
from tests.fakes import HashingEmbedder
from tests.knowledge import files

pytestmark = pytest.mark.unit


def _app() -> App:
    return App(overrides={"embedder": HashingEmbedder()})


def test_kb_commands_have_help() -> None:
    for command in (["kb"], ["kb", "list"], ["kb", "stats"], ["kb", "remove"], ["kb", "rebuild"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_ingest_list_stats_remove(tmp_path: Path) -> None:
    runner, app = CliRunner(), _app()
    docs = files.write_all(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    result = runner.invoke(main, ["ingest", str(docs)], obj=app)
    assert result.exit_code == 0, result.output
    assert "ingested 7 file(s)" in result.output and "broken.pdf" in result.stderr
    listed = [
        json.loads(line)
        for line in runner.invoke(main, ["kb", "list", "--json"], obj=app).stdout.splitlines()
    ]
    assert {Path(d["source"]).name for d in listed} == {
        p.name for p in docs.rglob("*") if p.is_file()
    } - {"broken.pdf"}
    stats = json.loads(runner.invoke(main, ["kb", "stats", "--json"], obj=app).stdout)
    assert (
        stats["documents"] == 7
        and stats["vectors"] == stats["chunks"]
        and stats["index"] == "Flat (exact)"
    )
    removed = runner.invoke(main, ["kb", "remove", str(docs / "faq.csv")], obj=app)
    assert removed.exit_code == 0 and "faq.csv" in removed.stdout
    assert (
        json.loads(runner.invoke(main, ["kb", "stats", "--json"], obj=app).stdout)["documents"] == 6
    )
    assert runner.invoke(main, ["kb", "remove", str(docs / "faq.csv")], obj=app).exit_code == 1


def test_corrupted_index_says_rebuild_and_rebuild_repairs(tmp_path: Path, data_dir: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["ingest", str(files.write_all(tmp_path / "docs"))], obj=_app())
    meta = VectorIndex.read_meta(data_dir / "index")
    assert meta is not None
    (data_dir / "index" / meta.file).write_bytes(b"garbage")
    broken = runner.invoke(main, ["kb", "stats"], obj=_app())
    assert (
        broken.exit_code == 1 and "kb rebuild" in broken.output and "Traceback" not in broken.output
    )
    rebuilt = runner.invoke(main, ["kb", "rebuild"], obj=_app())
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (
        json.loads(runner.invoke(main, ["kb", "stats", "--json"], obj=_app()).stdout)["vectors"] > 0
    )
