"""The `assistant` command: one click group, one module per command family."""

from __future__ import annotations

import logging

import click

from assistant.cli.app import App, pass_app
from assistant.cli.ask import ask
from assistant.cli.audit import audit
from assistant.cli.bench import bench
from assistant.cli.chat import chat
from assistant.cli.conversations import conversations
from assistant.cli.deliveries import deliveries
from assistant.cli.eval import eval_command
from assistant.cli.ingest import ingest
from assistant.cli.init import check, init
from assistant.cli.kb import kb
from assistant.cli.keys import keys
from assistant.cli.model import model
from assistant.cli.report import report
from assistant.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug).")
@click.version_option(package_name="assistant")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """A customer-support assistant over your own knowledge base."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.ensure_object(App)


main.add_command(init)
main.add_command(check)
main.add_command(ingest)
main.add_command(ask)
main.add_command(chat)
main.add_command(model)
main.add_command(serve)
main.add_command(deliveries)
main.add_command(kb)
main.add_command(bench)
main.add_command(eval_command)
main.add_command(report)
main.add_command(conversations)
main.add_command(keys)
main.add_command(audit)

__all__ = ["App", "main", "pass_app"]
