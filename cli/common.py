"""What every sub-app shares: JSON output, one-line user errors, exit codes.

Exit codes: 0 ok; 1 the work failed (a model or tool error); 2 the user asked for something
wrong (bad argument, unknown name, missing file); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

EXIT_FAILED = 1
EXIT_USER = 2

console = Console()
err_console = Console(stderr=True)

# Exceptions that mean "the user asked for something wrong": one line, exit 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, KeyError, ValueError, PermissionError)


def print_json(obj: Any) -> None:
    """Prints one JSON document on stdout (pydantic models and paths included)."""
    typer.echo(json.dumps(obj, indent=2, default=_default, ensure_ascii=False))


def _default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    return str(o)


def fail(message: str, code: int = EXIT_USER) -> NoReturn:
    """Ends the command with one clear line on stderr."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def report(err: BaseException, debug: bool) -> NoReturn:
    """Turns an exception escaping a command into one line and an exit code (traceback with --debug)."""
    if debug:
        raise err
    if isinstance(err, KeyboardInterrupt):
        fail("interrupted", 130)
    code = EXIT_USER if isinstance(err, USER_ERRORS) else EXIT_FAILED
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    fail(f"{text}" if text else type(err).__name__, code)


def is_debug() -> bool:
    return "--debug" in sys.argv


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A Rich progress bar on stderr for long work (training, eval, learning).

    Yields `update(completed=None, note="")`: with `completed` it jumps there (a resumed run
    starts part-way), otherwise it advances by one; `note` shows the latest loss or item.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=err_console, disable=not enabled) as bar:
        task = bar.add_task(description, total=total, note="")

        def update(completed: int | None = None, note: str = "") -> None:
            if completed is None:
                bar.advance(task)
            else:
                bar.update(task, completed=completed)
            if note:
                bar.update(task, note=note)

        yield update
