"""What every sub-app shares: JSON output, one-line user errors, exit codes.

Exit codes: 0 ok; 1 the work failed (a model or tool error, or a bug: `--debug` shows its
traceback); 2 the user asked for something wrong (bad argument, unknown name, missing file: a
`mmagent.errors.UserError` or a path error such as `FileNotFoundError`); 3 `mmagent run` stopped
at the step limit before the model answered; 4 the turn waits for the results of calls to tools
the caller runs (`--tools-json` schemas without a handler); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from mmagent.errors import UserError

EXIT_FAILED = 1
EXIT_USER = 2
EXIT_STEP_LIMIT = 3
EXIT_TOOL_CALLS = 4
# One help text for the decoding flag of run, chat and eval (the default is what is measured).
CONSTRAINED_HELP = ("Schema-guided decoding of tool calls (every call parses and validates); on by default wherever the "
                    "backend supports it. --free decodes without the grammar.")

TOOLS_JSON_HELP = ("A JSON file of tool schemas (a list of OpenAI function schemas or MCP tools, or an MCP tools/list "
                   "result) offered besides the built-in tools; the caller runs their calls (see `mmagent resume --tool-results`).")
# The --mcp flag of run, chat and serve.
MCP_HELP = "An MCP server whose tools the agent gets too: a command line (stdio) or an http(s):// URL (repeatable)."

console = Console()
err_console = Console(stderr=True)

# Exceptions that mean "the user asked for something wrong": one line, exit 2, no traceback.
# Anything else (a bare ValueError or KeyError from library code included) is a failure or a bug: exit 1.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
)


def print_json(obj: Any) -> None:
    """Prints one JSON document on stdout (pydantic models and paths included)."""
    typer.echo(json.dumps(obj, indent=2, default=_default, ensure_ascii=False))


def _default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    return str(o)


def fail(message: str, code: int = EXIT_USER) -> NoReturn:
    """Ends the command with one clear line on stderr (the message is text, not Rich markup)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def report(err: BaseException, debug: bool) -> NoReturn:
    """Turns an exception escaping a command into one line and an exit code (traceback with --debug).

    A user error (`USER_ERRORS`) exits 2; anything else exits 1: a bare ValueError or KeyError
    from library code is a bug or a failure, not something the user typed.
    """
    if isinstance(err, KeyboardInterrupt):
        fail("interrupted", 130)
    code = EXIT_USER if isinstance(err, USER_ERRORS) else EXIT_FAILED
    if debug:
        traceback.print_exception(err, file=sys.stderr)
        raise typer.Exit(code)
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    if code == EXIT_USER:
        fail(text or type(err).__name__, code)
    fail(f"{type(err).__name__}: {text} (`mmagent --debug ...` shows the traceback)", code)


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
