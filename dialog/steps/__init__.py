"""The steps of a turn, one module each; `dialog.manager.Assistant` runs them in order.

    guard, label (dialog.guard, dialog.sentiment) -> commands -> confirmation -> extraction ->
    handoff -> forms -> routing -> answer -> reply

A step reads the turn's work (`dialog.turnwork.TurnWork`) and the assistant's parts (`Services`)
and returns an `Outcome` that carries its events, an `AnswerPlan`, or None (the next step runs).
Events that later steps of the same turn must see (a slot just extracted, a question resolved) are
added to the work at once; stored state is only ever changed by appending the turn's events.
"""
