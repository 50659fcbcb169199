"""`assistant init`: scaffold a company's own assistant; `assistant check`: validate its settings,
domain file and tools, naming the file, line and problem of each error."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from assistant_core.settings import Settings, config_file, default_data_dir

SCAFFOLD = ("assistant.toml", "domain.yaml", "tools.py", "docs", "eval.jsonl")

ASSISTANT_TOML = """\
# Settings of {company}'s assistant. Environment variables ASSISTANT_<NAME> override each one;
# the README ("Settings") lists them all. `assistant check` validates this file.

domain = "domain.yaml"       # who the assistant is, what it says, its forms
tools = "tools.py:tools"     # the functions it may call
data_dir = ".assistant"      # conversations and the knowledge base of this assistant
model_dir = "{model_dir}"    # converted models, shared by every assistant on this machine

# link_hosts = "www.example.com"   # hosts answers may link to (web sources' hosts are added)
# web_hosts = "help.example.com"   # hosts `assistant ingest URL` may crawl (empty: any given)
# llm_base_url = "http://gpu-box:8000/v1"   # a model server (vLLM, SGLang); empty: built in
"""

DOMAIN_YAML = """\
# {company}'s assistant: its persona, its texts, what it collects and what it can do.
# `assistant check` validates this file. Slot types with rule extractors: email, phone,
# order_id, date, amount; other types (text, number) are read by the language model.
name: {company}

persona:
  assistant_name: ""          # e.g. Ada; empty: no name
  company: {company}
  tone: friendly and concise
  languages: [English]
  instructions: ""            # anything every answer must respect
  greeting: "Hello! I'm the {company} assistant. How can I help?"
  link_hosts: []              # your own hosts, which answers may link to
  web:
    title: {company} support
    intro: "Answers come from the {company} help centre, with the passages they used."
    placeholder: "Ask a question about {company}…"
    examples:
      - "What are your opening hours?"
      - "Can someone call me back?"

confirm_below: 0.7            # values extracted with less confidence are confirmed first

slots:
  name:
    type: text
    prompt: "What's your name?"
    description: "the customer's name"
    min_length: 2
    max_length: 80
    invalid: "Could you tell me your name?"
  phone:
    type: phone
    prompt: "Which phone number should we call?"
    description: "the customer's phone number"
    invalid: "That doesn't look like a phone number. Could you write it with the country code?"
  topic:
    type: text
    prompt: "What should we call you about?"
    description: "what the customer wants to talk about, in their words"
    min_length: 3
    max_length: 300
    invalid: "Could you tell me a little more?"

forms:
  callback_request:
    description: "Ask the support team for a call back"
    slots: [name, phone, topic]
    submit: request_callback
    triggers:
      - '\\b(call me( back)?|call-?back|ring me)\\b'

handoff_triggers:
  - '\\b(speak|talk) (to|with) (a )?(human|person|agent)\\b'

responses:
  handoff: >-
    I'm passing you to a colleague from the {company} team.
    They can see our conversation and will reply here.
  no_answer: >-
    I couldn't find that in the {company} help centre. Could you rephrase the question,
    or would you like me to connect you with a person?
  offer: >-
    I'm sorry this has been frustrating.
    Would you like me to connect you with a person? (yes/no)
  kb_unavailable: >-
    I can't search the {company} help centre right now.
    Would you like me to connect you with a person?
"""

TOOLS_PY = '''\
"""{company}'s tools: Python functions the assistant may call, each with a pydantic model of its
arguments. Tools that change something (`side_effects=True`) run only after the customer
confirms the sentence in `confirm`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dialog.tools import ToolContext, ToolRegistry

CALLBACKS = Path(__file__).with_name("callbacks.jsonl")
"""Where call-back requests go; replace the body of request_callback with your CRM's API."""


class CallbackArgs(BaseModel):
    """Arguments of `request_callback`."""

    name: str = Field(description="The customer's name", min_length=2, max_length=80)
    phone: str = Field(description="The phone number to call", pattern=r"^\\+?\\d{{7,15}}$")
    topic: str = Field(description="What the call is about", min_length=3, max_length=300)


def request_callback(args: CallbackArgs, ctx: ToolContext) -> dict[str, Any]:
    """Ask the support team to call the customer back"""
    record = {{**args.model_dump(), "conversation_id": ctx.conversation_id}}
    record["requested_at"] = datetime.now(UTC).isoformat()
    with CALLBACKS.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\\n")
    return {{"message": f"Thanks {{args.name}}: we'll call you at {{args.phone}} within a day."}}


def tools() -> ToolRegistry:
    """Every tool of this assistant (the `tools` setting names this function)."""
    registry = ToolRegistry()
    registry.tool(
        side_effects=True,
        confirm="I'll ask our team to call {{name}} at {{phone}} about: {{topic}}. Shall I?",
    )(request_callback)
    return registry
'''

ARTICLE_MD = """\
# Contact and opening hours

The {company} support team answers by chat and email from Monday to Friday, 9:00 to 17:00.

## Call-back requests

Ask the assistant for a call back and leave your phone number: a colleague calls you within one
working day.

## Email

Write to support@example.com. We reply within one working day.
"""

EVAL_JSONL = [
    {
        "question": "When is the support team available?",
        "expect_any": ["9:00", "Monday to Friday"],
        "source": "contact-and-opening-hours.md",
    },
    {
        "question": "How quickly do you reply to emails?",
        "expect_any": ["one working day"],
        "source": "contact-and-opening-hours.md",
    },
    {"question": "What is the price of a space shuttle ticket?", "answerable": False},
]


def _demo_company() -> str:
    from assistant.demo.shop import DOMAIN_FILE
    from dialog.domain import Domain

    return Domain.load(DOMAIN_FILE).persona.company


def _company(folder: Path, name: str | None) -> str:
    return name or folder.resolve().name.replace("-", " ").replace("_", " ").title()


@click.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The company's name (default: the folder's name).")
@click.option("--demo", is_flag=True, help="Scaffold the bundled demo shop instead.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(folder: Path, name: str | None, demo: bool, force: bool) -> None:
    """Create a working assistant for your company in FOLDER: settings (assistant.toml), a domain
    file (persona, texts, an example form), tools.py (an example tool), docs/ with an example
    article and eval.jsonl, then print the next commands."""
    existing = [f for f in SCAFFOLD if (folder / f).exists()]
    if existing and not force:
        raise click.ClickException(
            f"{folder} already has {', '.join(existing)}: use --force to overwrite"
        )
    company = _demo_company() if demo else _company(folder, name)
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    model_dir = str(default_data_dir() / "models")
    settings = ASSISTANT_TOML.format(company=company, model_dir=model_dir)
    if demo:
        from assistant.demo import HELP_CENTRE

        settings = settings.replace('domain = "domain.yaml"', 'domain = "demo"  # the demo shop')
        settings = settings.replace('tools = "tools.py:tools"', "# tools: the demo brings its own")
        shutil.copytree(HELP_CENTRE, docs, dirs_exist_ok=True)
    else:
        (folder / "domain.yaml").write_text(DOMAIN_YAML.format(company=company), encoding="utf-8")
        (folder / "tools.py").write_text(TOOLS_PY.format(company=company), encoding="utf-8")
        article = ARTICLE_MD.format(company=company)
        (docs / "contact-and-opening-hours.md").write_text(article, encoding="utf-8")
        lines = "".join(json.dumps(item) + "\n" for item in EVAL_JSONL)
        (folder / "eval.jsonl").write_text(lines, encoding="utf-8")
    (folder / "assistant.toml").write_text(settings, encoding="utf-8")
    go = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder}\n  "
    click.echo(
        f"Created the assistant of {company} in {folder}. Next:\n"
        f"  {go}assistant ingest docs/          # or a website: assistant ingest https://…\n"
        "  assistant check                 # settings, domain file and tools\n"
        "  assistant chat                  # or: assistant serve (web chat and API)"
    )


# ---- check


@dataclass(frozen=True)
class Problem:
    """One error in one file: where and what."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else (f"{self.file}: {self.message}")
        )


@click.command()
def check() -> None:
    """Validate the settings (assistant.toml and ASSISTANT_* variables), the domain file and the
    tools; each error names its file, line and problem."""
    problems = list(_problems())
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(1)
    click.echo("configuration OK")


def _problems() -> Iterator[Problem]:
    toml_path = config_file()
    toml_text = toml_path.read_text(encoding="utf-8") if toml_path.is_file() else ""
    try:
        tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as err:
        yield Problem(str(toml_path), getattr(err, "lineno", 0), str(err).split(" (at")[0])
        return
    try:
        settings = Settings()
    except ValidationError as err:
        for item in err.errors():
            key = str(item["loc"][0]) if item["loc"] else ""
            where, line = _setting_origin(key, toml_path, toml_text)
            yield Problem(where, line, f"{key}: {item['msg']}")
        return
    if settings.domain in {"", "none", "demo"}:
        domain = None
    else:
        domain_path = Path(settings.domain).expanduser()
        domain, found = _check_domain(domain_path)
        yield from found
    if settings.tools:
        yield from _check_tools(settings.tools, domain, toml_path, toml_text)


def _setting_origin(key: str, toml_path: Path, toml_text: str) -> tuple[str, int]:
    """Where a setting was given: its line in the TOML file, else its environment variable."""
    for number, line in enumerate(toml_text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return str(toml_path), number
    return f"ASSISTANT_{key.upper()}", 0


def _check_domain(path: Path) -> tuple[Any, list[Problem]]:
    from dialog.domain import Domain

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return None, [Problem(str(path), 0, f"cannot read: {err.strerror}")]
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        root = None if path.suffix == ".toml" else yaml.compose(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(err, "lineno", 0)
        return None, [Problem(str(path), line, f"not valid {path.suffix[1:]}: {err}")]
    try:
        return Domain.model_validate(data or {}), []
    except ValidationError as err:
        return None, [
            Problem(str(path), _yaml_line(root, item["loc"]), _describe(item))
            for item in err.errors()
        ]


def _describe(item: Any) -> str:
    path = ".".join(str(p) for p in item["loc"])
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def _yaml_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node the error's location reaches (1-based; 0: unknown)."""
    node, line = root, 1 if root is not None else 0
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = (key.start_mark.line + 1 if key else line), match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _check_tools(reference: str, domain: Any, toml_path: Path, toml_text: str) -> list[Problem]:
    from dialog.errors import DialogError
    from dialog.steps.actions import build_actions
    from dialog.tools import load_tools

    where, line = _setting_origin("tools", toml_path, toml_text)
    try:
        registry = load_tools(reference)
    except (DialogError, SyntaxError) as err:
        return [Problem(where, line, str(err))]
    if domain is None:
        return []
    try:
        build_actions(domain, registry)
    except DialogError as err:
        return [Problem(where, line, str(err))]
    return []
