"""`assistant eval`: how well the assistant answers a file of questions, on your knowledge base or a
folder ingested for the run, under one or more settings side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app


@click.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--corpus",
    type=click.Path(exists=True, path_type=Path),
    help="Ingest this folder or file into a fresh temporary knowledge base and evaluate on it "
    "(your data is not touched). Without it: the configured knowledge base.",
)
@click.option(
    "--compare",
    "compare",
    multiple=True,
    metavar="KEY=VALUE[,KEY=VALUE]",
    help="A setting to evaluate (repeat for side-by-side columns), e.g. --compare retrieval=vector "
    "--compare retrieval=hybrid,top_k=5. Keys are settings (ASSISTANT_<KEY>).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write OUT/eval.json and OUT/eval.md.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of Markdown.")
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also ask the chat model alone, without retrieval.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="At most N questions (answerable and unanswerable in the file's proportion).",
)
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1, max=50),
    default=5,
    show_default=True,
    help="Source hit@k: the expected document among the knowledge base's k best passages.",
)
@pass_app
def eval_command(
    app: App,
    file: Path,
    corpus: Path | None,
    compare: tuple[str, ...],
    out: Path | None,
    as_json: bool,
    baseline: bool,
    limit: int | None,
    k: int,
) -> None:
    """Ask every question of FILE (YAML or JSONL) in a fresh conversation and score the answers.

    Each question has `question` and `expect_any` (strings a good answer contains) and/or `source`
    (the document expected among the sources), or `answerable: false` (the documents do not say:
    the assistant should abstain). Reports source hit@k, answer hit, answered and abstention rates,
    answers with invented facts, degenerate answers and latency.
    """
    from assistant.evaluation import Variant, evaluate, load_questions, render_markdown, subset
    from assistant.wiring import quiet_model_libraries
    from assistant_core.settings import load_settings

    console = Console(stderr=True)
    with friendly_errors():
        question_set = load_questions(file)
        if limit:
            question_set = subset(question_set, limit)
        variants = [Variant.parse(spec) for spec in compare]
        base = load_settings()
        quiet_model_libraries()
        runs = (len(variants) or 1) + (1 if baseline else 0)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("questions"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("starting", total=runs * len(question_set.questions))

            def on_item(name: str, item: object) -> None:
                progress.update(task, advance=1, description=name[:40])

            def status(text: str) -> None:
                progress.update(task, description=text[:60])

            report = evaluate(
                question_set,
                base=base,
                variants=variants,
                corpus=corpus,
                baseline=baseline,
                k=k,
                overrides=app.overrides,
                on_item=on_item,
                status=status,
            )
    markdown = render_markdown(report)
    payload = json.dumps(report.as_json(), indent=2, ensure_ascii=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(payload + "\n", encoding="utf-8")
        (out / "eval.md").write_text(markdown, encoding="utf-8")
        console.print(f"wrote {out / 'eval.json'} and {out / 'eval.md'}", highlight=False)
    if as_json:
        click.echo(payload)
    else:
        click.echo(render_markdown(report, with_failures=out is None))
