"""The built-in slash commands: /help /reset /state /sources /summarize /translate /handoff
/forget."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from assistant_core.errors import LLMError
from dialog.commands import CommandContext, CommandRegistry, NoArgs, Outcome
from dialog.events import BotUttered, ConversationRestarted, Event, LanguageSet
from dialog.steps.handoff import start_handoff
from dialog.summary import summarize, transcript


class TranslateArgs(BaseModel):
    """`/translate LANG`."""

    language: str = Field(min_length=2, max_length=40, pattern=r"^[A-Za-z][A-Za-z \-]*$")


def builtin_commands() -> CommandRegistry:
    """A registry holding the built-ins; add your own with `registry.command(...)`."""
    registry = CommandRegistry()
    registry.command("help", "List commands and what the assistant can do")(_help)
    registry.command(
        "reset", "Start over: forget slots, forms and open questions (the log is kept)"
    )(_reset)
    registry.command("state", "Show what the assistant knows, and where each value came from")(
        _state
    )
    registry.command("sources", "Show the passages the last answer drew on")(_sources)
    registry.command("summarize", "Summarise the conversation so far")(_summarize)
    registry.command(
        "translate",
        "Translate the last answer, and answer in that language from now on",
        args=TranslateArgs,
    )(_translate)
    registry.command("handoff", "Talk to a person")(_handoff)
    registry.command(
        "forget", "Erase this conversation and everything derived from it", allowed_in_handoff=True
    )(_forget)
    return registry


def _help(ctx: CommandContext, args: NoArgs) -> Outcome:
    lines = ["Commands:"] + [f"  {c.usage} — {c.help}" for c in ctx.assistant.commands]
    actions = ctx.assistant.actions
    if actions:
        lines += ["", "I can also do these for you — just ask in your own words:"]
        lines += [f"  {a.description}" for a in actions.values()]
    return Outcome("\n".join(lines))


def _reset(ctx: CommandContext, args: NoArgs) -> Outcome:
    return Outcome("Let's start over. What can I help you with?", events=[ConversationRestarted()])


def _state(ctx: CommandContext, args: NoArgs) -> Outcome:
    state = ctx.work.state
    lines = [f"Conversation {state.conversation_id}: {state.turns} messages from you."]
    if state.handoff:
        lines.append("A person is handling this conversation.")
    if state.active_form:
        lines.append(f"In progress: {state.active_form.replace('_', ' ')}.")
    if not state.slots:
        lines.append("I have not noted any details yet.")
    for name, slot in state.slots.items():
        where = f'"{slot.span}"' if slot.span else "no quote"
        lines.append(
            f"  {name} = {json.dumps(slot.value, ensure_ascii=False)} — "
            f"from message {slot.turn} ({where}), "
            f"{slot.extractor or 'set'}, confidence {slot.confidence:.2f}"
        )
    return Outcome("\n".join(lines))


def _sources(ctx: CommandContext, args: NoArgs) -> Outcome:
    sources = ctx.work.state.last_sources
    if not sources:
        return Outcome("The last answer did not use any passages.")
    lines = ["The last answer drew on:"]
    lines += [
        f"  [{i}] {s.get('source', '?')} (passage {s.get('chunk_id')})"
        for i, s in enumerate(sources, 1)
    ]
    return Outcome("\n".join(lines))


def _summarize(ctx: CommandContext, args: NoArgs) -> Outcome:
    state = ctx.work.state
    lines = transcript(ctx.work.history)
    if not lines and not state.summary:
        return Outcome("There is nothing to summarise yet.")
    return Outcome("Summary: " + summarize(ctx.assistant.model, state.summary, lines))


def _translate(ctx: CommandContext, args: TranslateArgs) -> Outcome:
    language = args.language.strip().title()
    events: list[Event] = [LanguageSet(language)]
    last = next(
        (e.text for e in reversed(ctx.work.history) if isinstance(e, BotUttered) and e.text), ""
    )
    if not last:
        return Outcome(f"From now on I will answer in {language}.", events=events)
    messages = [
        {
            "role": "system",
            "content": f"Translate the user's text into {language}. Write only the translation.",
        },
        {"role": "user", "content": last},
    ]
    try:
        text = ctx.assistant.model.complete(
            messages, max_tokens=ctx.assistant.options.max_new_tokens
        ).text.strip()
    except LLMError as err:
        return Outcome(
            f"I could not translate that just now ({err}). "
            f"I will answer in {language} from now on.",
            events=events,
        )
    return Outcome(text or f"From now on I will answer in {language}.", events=events)


def _handoff(ctx: CommandContext, args: NoArgs) -> Outcome:
    return start_handoff(ctx.assistant, ctx.work, "the customer asked for a person (/handoff)")


def _forget(ctx: CommandContext, args: NoArgs) -> Outcome:
    return Outcome(
        (
            "I have erased this conversation: your messages, the details I noted and everything "
            "derived from them."
        ),
        erase=True,
    )
