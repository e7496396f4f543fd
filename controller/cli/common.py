"""What every ``railyard`` command shares: consoles, the JSON option, error display."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from controller.errors import RailyardError

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Show Railyard errors as one readable message and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RailyardError as exc:
            errors.print(f"[red]error:[/red] {exc.message}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def short(revision: str | None) -> str:
    return revision[:12] if revision else "-"
