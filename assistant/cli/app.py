"""What every command shares: settings and the lazily built components, errors turned into
messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from assistant.wiring import Components
from assistant_core.errors import AssistantError
from assistant_core.settings import load_settings


@dataclass
class App:
    """The CLI's context object; tests pass one with fakes through `CliRunner.invoke(obj=...)`."""

    overrides: dict[str, Any] = field(default_factory=dict)
    _components: Components | None = None

    @property
    def components(self) -> Components:
        if self._components is None:
            with friendly_errors():
                self._components = Components(load_settings(), self.overrides)
        return self._components

    def close(self) -> None:
        if self._components is not None:
            self._components.close()


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Our own errors become one clear line on stderr and exit code 1, not a traceback."""
    try:
        yield
    except AssistantError as err:
        raise click.ClickException(str(err)) from err


pass_app: Callable[..., Any] = click.make_pass_decorator(App, ensure=True)
