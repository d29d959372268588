"""`mmagent run`: one agent turn from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape

from mmagent.cli.common import (CONSTRAINED_HELP, EXIT_FAILED, EXIT_STEP_LIMIT, EXIT_TOOL_CALLS, MCP_HELP, TOOLS_JSON_HELP, err_console, fail,
                                print_json)
from mmagent.errors import UserError

if TYPE_CHECKING:
    from mmagent.agent import RunResult

SCRIPTED = "scripted:"


def resolve_model(spec: str):
    """A `scripted:FILE.json` spec becomes a ScriptedChatModel; any other spec loads lazily in the Agent."""
    from mmagent.agent import ScriptedChatModel

    return ScriptedChatModel.from_file(spec[len(SCRIPTED):]) if spec.startswith(SCRIPTED) else spec


def agent_tools(names: list[str] | None, tools_json: Path | None) -> list[Any] | None:
    """`--tool` names and `--tools-json` schemas as `Agent(tools=...)`; None (every built-in tool)
    when neither is given. The schemas come on top of the built-in tools (or of the `--tool` ones)."""
    if tools_json is None:
        return names or None
    from mmagent.tools.registry import default_registry
    from mmagent.tools.schema_tool import load_tool_schemas

    return [*(names or default_registry().names()), *load_tool_schemas(tools_json)]


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
    memory_namespace: Annotated[str, typer.Option("--memory-namespace", help="Whose memories the tools use (default: the local user's, shared by all sessions).")] = "default",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (answer, calls, artifacts, trace, status ...).")] = False,
    tools_json: Annotated[Optional[Path], typer.Option("--tools-json", help=TOOLS_JSON_HELP)] = None,
    mcp: Annotated[Optional[list[str]], typer.Option("--mcp", help=MCP_HELP)] = None,
) -> None:
    """Runs one agent turn: the model plans, calls tools, and answers.

    The answer goes to stdout; tool traffic and the turn id (for `mmagent feedback`) go to stderr.
    Calls to --tools-json tools are not run: once their arguments validate, each is printed on
    stdout as one JSON object ({"id", "name", "arguments", "external": true}) and the turn waits;
    answer with `mmagent resume SESSION --tool-results RESULTS.json` ({call id: result}).
    Exit codes: 0 answered; 1 the turn failed; 2 bad input; 3 the step limit (--max-steps) ended
    the turn before a final answer; 4 the turn waits for the results of --tools-json calls.

    Example: mmagent run "What does this sign say?" --image examples/sign.png --json
    """
    from mmagent.agent import Agent

    for p in [*(image or []), *(audio or [])]:
        if not p.is_file():
            fail(f"no such file: {p}")
    try:
        with Agent(model=resolve_model(model), tools=agent_tools(tool, tools_json), max_steps=max_steps, constrained=constrained,
                   memory=memory, memory_namespace=memory_namespace, mcp_servers=mcp or ()) as agent:
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
    if any(c.get("external") for c in result.pending):
        raise typer.Exit(EXIT_TOOL_CALLS)
    if result.status in ("error", "step_limit"):
        raise typer.Exit(EXIT_FAILED if result.status == "error" else EXIT_STEP_LIMIT)


def _after_turn(result: RunResult) -> None:
    """Human output after the answer, on stderr: how the turn ended and its id for `mmagent feedback`."""
    external = [c for c in result.pending if c.get("external")]
    for c in external:  # stdout: what the caller has to run, one JSON object a line
        typer.echo(json.dumps(c, ensure_ascii=False))
    if external:
        err_console.print(f"session {result.session} waits for the results of the {len(external)} call(s) above, which the "
                          f"caller runs: mmagent resume {result.session} --tool-results RESULTS.json (a JSON object "
                          "{call id: result})", highlight=False, markup=False, soft_wrap=True)
    if result.status == "interrupted" and len(external) < len(result.pending):
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
    tool_results: Annotated[Optional[Path], typer.Option("--tool-results", help="A JSON file {call id: result} answering the calls the caller runs (run --tools-json).")] = None,
    tools_json: Annotated[Optional[Path], typer.Option("--tools-json", help="The tool schemas the turn was run with, offered again for its next steps.")] = None,
) -> None:
    """Finishes a session's unfinished turn: one waiting for approval or for the results of calls
    the caller runs (--tool-results), or one whose process died.

    A call that was running when the process died is not run again (it may have taken effect);
    the model is told so. Exit codes as for run.

    Example: mmagent resume s-1a2b3c --approve
    Example: mmagent resume s-1a2b3c --tool-results results.json --tools-json my-tools.json
    """
    from mmagent.agent import Agent

    approval = None if approve is None else ("approve" if approve else "deny")
    try:
        with Agent(model=resolve_model(model), tools=agent_tools(None, tools_json)) as agent:
            decision = _decision(agent, session, approval, tool_results)
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


def _decision(agent: Any, session: str, approval: str | None, results_path: Path | None) -> Any:
    """--approve/--deny and --tool-results as one resume decision ({call id: result or decision})."""
    external = [c for c in agent.pending(session) if c.get("external")]
    if results_path is None:
        if external:
            fail(f"session {session} waits for the results of calls the caller runs "
                 f"({', '.join(c['id'] + ' ' + c['name'] for c in external)}); pass them with --tool-results RESULTS.json")
        return approval
    try:
        results = json.loads(results_path.read_text())
    except json.JSONDecodeError as err:
        fail(f"{results_path} is not JSON ({err.msg} at line {err.lineno}); it must hold an object {{call id: result}}")
    if not isinstance(results, dict):
        fail(f"{results_path} must hold a JSON object {{call id: result}}")
    asks = {c["id"]: approval for c in agent.pending(session) if not c.get("external")} if approval else {}
    return {**asks, **results}


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
