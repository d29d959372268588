"""`mmagent run`: one agent turn from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from mmagent.cli.common import CONSTRAINED_HELP, EXIT_FAILED, EXIT_STEP_LIMIT, err_console, fail, print_json
from mmagent.errors import UserError

if TYPE_CHECKING:
    from mmagent.agent import RunResult

SCRIPTED = "scripted:"


def resolve_model(spec: str):
    """A `scripted:FILE.json` spec becomes a ScriptedChatModel; any other spec loads lazily in the Agent."""
    from mmagent.agent import ScriptedChatModel

    return ScriptedChatModel.from_file(spec[len(SCRIPTED):]) if spec.startswith(SCRIPTED) else spec


def run(
    prompt: Annotated[str, typer.Argument(help="What the agent should do.")],
    image: Annotated[Optional[list[Path]], typer.Option("--image", "-i", help="Image to attach (repeatable); referred to as image_1, image_2 ...")] = None,
    audio: Annotated[Optional[list[Path]], typer.Option("--audio", "-a", help="Audio clip to attach (WAV; repeatable).")] = None,
    session: Annotated[Optional[str], typer.Option("--session", "-s", help="Continue this session (history, artifacts); default: a new one.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (catalog name, path, or scripted:FILE.json for a scripted fake).")] = "mmagent-default",
    tool: Annotated[Optional[list[str]], typer.Option("--tool", "-t", help="Offer only these built-in tools (repeatable); default: all.")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Model steps before the turn stops.")] = 6,
    constrained: Annotated[Optional[bool], typer.Option("--constrained/--free", help=CONSTRAINED_HELP, show_default=False)] = None,
    memory: Annotated[Optional[Path], typer.Option("--memory", help="Memory store for remember/search_memory (default <home>/memory).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (answer, calls, artifacts, trace, status ...).")] = False,
) -> None:
    """Runs one agent turn: the model plans, calls tools, and answers.

    The answer goes to stdout; tool traffic and the turn id (for `mmagent feedback`) go to stderr.
    Exit codes: 0 answered; 1 the turn failed; 2 bad input; 3 the step limit (--max-steps) ended
    the turn before a final answer.

    Example: mmagent run "What does this sign say?" --image examples/sign.png --json
    """
    from mmagent.agent import Agent

    for p in [*(image or []), *(audio or [])]:
        if not p.is_file():
            fail(f"no such file: {p}")
    try:
        with Agent(model=resolve_model(model), tools=tool or None, max_steps=max_steps, constrained=constrained,
                   memory=memory) as agent:
            if json_out:
                result = agent.run(prompt, images=image or [], audio=audio or [], session=session)
            else:
                show = _Printer()
                for event in agent.stream(prompt, images=image or [], audio=audio or [], session=session):
                    show(event)
                result = agent.result(event.session)
    except (UserError, FileNotFoundError) as err:  # bad input: one line, exit 2, nothing started
        fail(str(err))
    _report(result, json_out)


def _report(result: RunResult, json_out: bool) -> None:
    """The turn's JSON or its human epilogue, and the exit code its status means."""
    if json_out:
        print_json(result.model_dump(mode="json"))
    else:
        _after_turn(result)
    if result.status in ("error", "step_limit"):
        raise typer.Exit(EXIT_FAILED if result.status == "error" else EXIT_STEP_LIMIT)


def _after_turn(result: RunResult) -> None:
    """Human output after the answer, on stderr: how the turn ended and its id for `mmagent feedback`."""
    if result.status == "interrupted":
        err_console.print(f"session {result.session} waits for approval: mmagent resume {result.session} --approve|--deny",
                          highlight=False)
    elif result.status in ("error", "step_limit"):
        label = "error" if result.status == "error" else "stopped"
        err_console.print(f"[bold red]{label}:[/] {escape(result.error or result.status)}", highlight=False)
    if result.turn_id:
        err_console.print(f"turn: {result.turn_id}  (rate it: mmagent feedback {result.turn_id} --rating up|down)",
                          style="dim", highlight=False, markup=False, soft_wrap=True)


class _Printer:
    """Model tokens and tool traffic stream to stderr as they come; the answer goes to stdout."""

    def __init__(self) -> None:
        self.mid_line = False

    def __call__(self, event) -> None:
        if event.type == "token":
            err_console.print(event.text, end="", style="dim", highlight=False, markup=False)
            self.mid_line = True
            return
        if self.mid_line:
            err_console.print()
            self.mid_line = False
        if event.type == "answer":
            typer.echo(event.text)
        elif event.type != "error":  # errors are reported once, after the turn
            err_console.print(event.line(), style="dim", highlight=False, soft_wrap=True, markup=False)


def resume(
    session: Annotated[str, typer.Argument(help="The session whose unfinished turn to finish.")],
    approve: Annotated[Optional[bool], typer.Option("--approve/--deny", help="The decision, when the turn waits for approval.", show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (as for run).")] = "mmagent-default",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object, as run --json does.")] = False,
) -> None:
    """Finishes a session's unfinished turn: one waiting for approval, or one whose process died.

    A call that was running when the process died is not run again (it may have taken effect);
    the model is told so. Exit codes as for run.

    Example: mmagent resume s-1a2b3c --approve
    """
    from mmagent.agent import Agent

    decision = None if approve is None else ("approve" if approve else "deny")
    try:
        with Agent(model=resolve_model(model)) as agent:
            if json_out:
                result = agent.resume(session, decision)
            else:
                show = _Printer()
                for event in agent.resume_stream(session, decision):
                    show(event)
                result = agent.result(session)
    except (UserError, FileNotFoundError) as err:
        fail(str(err))
    _report(result, json_out)


def abandon(
    session: Annotated[str, typer.Argument(help="The session whose unfinished turn to drop.")],
) -> None:
    """Drops a session's unfinished turn without running more of it (logged as `abandoned`);
    the session takes new turns again. Calls that had not run are recorded as not run.

    Example: mmagent abandon s-1a2b3c
    """
    from mmagent.agent import Agent

    try:
        with Agent(tools=[]) as agent:  # the model (a spec) never loads: abandoning runs nothing
            result = agent.abandon(session)
    except (UserError, FileNotFoundError) as err:
        fail(str(err))
    err_console.print(f"abandoned turn {result.turn_id} of session {session}", highlight=False)
