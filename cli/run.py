"""`mmagent run`: one agent turn from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmagent.cli.common import EXIT_FAILED, err_console, fail, print_json

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
    constrained: Annotated[bool, typer.Option("--constrained", help="Schema-guided decoding: every emitted call parses and validates.")] = False,
    memory: Annotated[Optional[Path], typer.Option("--memory", help="Memory store for remember/search_memory (default <home>/memory).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (answer, calls, artifacts, trace, status ...).")] = False,
) -> None:
    """Runs one agent turn: the model plans, calls tools, and answers.

    Example: mmagent run "What does this sign say?" --image examples/sign.png --json
    """
    from mmagent.agent import Agent

    for p in [*(image or []), *(audio or [])]:
        if not p.is_file():
            fail(f"no such file: {p}")
    try:
        with Agent(model=resolve_model(model), tools=tool or None, max_steps=max_steps, constrained=constrained) as agent:
            memory_store = attach_memory(agent, memory)
            if json_out:
                result = agent.run(prompt, images=image or [], audio=audio or [], session=session)
            else:
                show = _Printer()
                for event in agent.stream(prompt, images=image or [], audio=audio or [], session=session):
                    show(event)
                result = agent.result(event.session)
            if memory_store is not None:
                memory_store.close()
    except (ValueError, FileNotFoundError) as err:  # bad input: one line, exit 2, nothing started
        fail(str(err))
    if json_out:
        print_json(result.model_dump(mode="json"))
    elif result.status == "interrupted":
        err_console.print(f"session {result.session} waits for approval; resume it with Agent.resume", highlight=False)
    if result.status == "error":
        if not json_out:
            err_console.print(f"[bold red]error:[/] {result.error}", highlight=False)
        raise typer.Exit(EXIT_FAILED)


def attach_memory(agent, path: Path | None = None):
    """Opens the memory store when the agent offers the memory tools (the embedder loads lazily)."""
    if not {"remember", "search_memory"} & set(agent.registry.names()):
        return None
    from mmagent.config import get_settings
    from mmagent.memory.store import MemoryStore

    agent.memory = MemoryStore(path or get_settings().home / "memory")
    return agent.memory


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
