"""`mmagent chat`: an interactive session with live tool traffic, approvals and feedback.

Lines starting with `/` are commands (see `/help`); anything else is a message to the agent.
Media attached with `/image` or `/audio` go with the next message. The session's history lives
in the agent's SQLite checkpoint, so `mmagent chat --session ID` picks it up in a new process,
including a turn that was waiting for approval.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from mmagent.cli.common import CONSTRAINED_HELP, MCP_HELP, TOOLS_JSON_HELP, console, err_console, fail
from mmagent.errors import UserError

HELP = """\
/image PATH          attach an image to your next message (repeatable)
/audio PATH          attach a WAV clip to your next message
/feedback up|down [--call JSON | --answer TEXT]
                     rate the last turn; with a correction (the right tool call(s) or answer)
/history             show this session's conversation
/tools               list the tools this agent can call
/help                this help
/quit                leave (Ctrl-D too); resume later with: mmagent chat --session ID"""


def chat(
    session: Annotated[Optional[str], typer.Option("--session", "-s", help="Resume this session (history, artifacts, a pending approval).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (catalog name, path, or scripted:FILE.json).")] = "mmagent-default",
    tool: Annotated[Optional[list[str]], typer.Option("--tool", "-t", help="Offer only these built-in tools (repeatable); default: all.")] = None,
    approve: Annotated[Optional[list[str]], typer.Option("--approve", help="Ask before running this tool (repeatable).")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Model steps per turn.")] = 6,
    constrained: Annotated[Optional[bool], typer.Option("--constrained/--free", help=CONSTRAINED_HELP, show_default=False)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where produced images are saved (default <home>/outputs/<session>).")] = None,
    tools_json: Annotated[Optional[Path], typer.Option("--tools-json", help=TOOLS_JSON_HELP.replace("see `mmagent resume --tool-results`", "here you type each call's result"))] = None,
    mcp: Annotated[Optional[list[str]], typer.Option("--mcp", help=MCP_HELP)] = None,
) -> None:
    """Chats with the agent: attach media, watch tool calls live, approve tools, give feedback.
    Calls to --tools-json tools are yours to answer: type each one's result (JSON, or plain text).

    Example: mmagent chat --approve generate_image
    then type:  /image examples/sign.png   and   what does this sign say?
    """
    from mmagent.agent import Agent
    from mmagent.cli.run import agent_tools, resolve_model
    from mmagent.config import get_settings

    try:
        agent = Agent(model=resolve_model(model), tools=agent_tools(tool, tools_json), approval=set(approve or ()), max_steps=max_steps,
                      constrained=constrained, mcp_servers=mcp or ())
    except (UserError, FileNotFoundError) as err:
        fail(str(err))
    session = session or f"s-{uuid.uuid4().hex[:12]}"
    out = out_dir or get_settings().home / "outputs" / session
    with agent:
        ChatSession(agent, session, out, input_fn=lambda prompt: console.input(prompt, markup=False)).loop()


class ChatSession:
    """One interactive session; `input_fn` reads a line (raises EOFError at the end)."""

    def __init__(self, agent: Any, session: str, out_dir: Path, input_fn: Callable[[str], str] = input) -> None:
        self.agent, self.session, self.out_dir, self.read = agent, session, out_dir, input_fn
        self.images: list[Path] = []
        self.audio: list[Path] = []
        self.last_turn: str | None = None
        self._mid_line = False
        self.commands: dict[str, Callable[[list[str]], None]] = {
            "image": self._attach(self.images), "audio": self._attach(self.audio), "feedback": self.feedback,
            "history": self.history, "tools": self.tools, "help": lambda _: console.print(HELP, markup=False),
        }

    def loop(self) -> None:
        console.print(f"session [bold]{self.session}[/] — /help for commands, /quit to leave", highlight=False)
        self._resume_if_waiting()
        while True:
            try:
                line = self.read("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            if line in ("/quit", "/exit"):
                break
            if line:
                self.handle(line)
        console.print(f"bye — resume with: mmagent chat --session {self.session}", highlight=False)

    def handle(self, line: str) -> None:
        if not line.startswith("/"):
            self.send(line)
            return
        name, *args = shlex.split(line[1:]) or [""]
        command = self.commands.get(name)
        if command is None:
            err_console.print(f"unknown command /{name}; /help lists them", highlight=False)
            return
        try:
            command(args)
        except (ValueError, FileNotFoundError) as err:
            err_console.print("[red]error:[/] " + escape(str(err)), highlight=False)

    # -- a turn ------------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        images, audio = self.images[:], self.audio[:]
        try:
            events = self.agent.stream(text, images=images, audio=audio, session=self.session)
            self.render(events)
        except (ValueError, FileNotFoundError) as err:  # bad media or an unfinished turn: nothing sent
            err_console.print("[red]error:[/] " + escape(str(err)), highlight=False)
            return
        self.images.clear()
        self.audio.clear()

    def render(self, events: Iterator[Any]) -> None:
        """Prints events as they stream; asks for approval at an interrupt and goes on."""
        for event in events:
            self.last_turn = event.turn_id or self.last_turn
            if event.type == "token":
                console.print(event.text, end="", style="dim", markup=False, highlight=False)
                self._mid_line = True
                continue
            self._end_line()
            if event.type == "interrupt":
                self.render(self.agent.resume_stream(self.session, self._ask(event.calls)))
                return
            if event.type == "answer":
                console.print("[bold green]agent>[/] " + escape(event.text or ""), highlight=False)
            elif event.type == "error":
                err_console.print("[red]error:[/] " + escape(event.text or ""), highlight=False)
            elif event.type == "artifact":
                self._save(event)
            else:
                console.print(event.line(), style="cyan", markup=False, highlight=False, soft_wrap=True)
        self._end_line()
        if self.last_turn:
            console.print(f"[dim]turn {self.last_turn} — /feedback up|down to rate it[/]", highlight=False)

    def _ask(self, calls: list[dict[str, Any]]) -> dict[str, Any]:
        decision = {}
        for c in calls:
            args = json.dumps(c["arguments"], ensure_ascii=False)
            if c.get("external"):
                decision[c["id"]] = self._result_of(c["name"], args)
                continue
            try:
                answer = self.read(f"approve {c['name']}({args})? [y/N] ").strip().lower()
            except (EOFError, KeyboardInterrupt):
                answer = "n"
            decision[c["id"]] = "approve" if answer in ("y", "yes") else "deny"
        return decision

    def _result_of(self, name: str, args: str) -> Any:
        """The user plays a --tools-json tool: a JSON value, or the text itself as a string."""
        try:
            text = self.read(f"result of {name}({args}) (JSON or text)> ").strip()
        except (EOFError, KeyboardInterrupt):
            return {"error": "the user gave no result"}
        try:
            return json.loads(text)
        except ValueError:
            return text

    def _resume_if_waiting(self) -> None:
        """A session opened with its last turn unfinished: approve it, or resume / abandon a
        turn whose process died (nothing new can be sent before)."""
        where = self.agent.unfinished(self.session)
        if where == "approve":
            pending = self.agent.pending(self.session)
            waits = "tool results" if any(c.get("external") for c in pending) else "approval"
            console.print(f"this session has a turn waiting for {waits}", highlight=False)
            self.render(self.agent.resume_stream(self.session, self._ask(pending)))
        elif where:
            answer = self.read(f"this session's last turn stopped at {where} (its process ended); resume it? [Y/n, n abandons it] ")
            if answer.strip().lower() in ("n", "no"):
                self.agent.abandon(self.session)
                console.print("abandoned; the session takes new messages", highlight=False)
            else:
                self.render(self.agent.resume_stream(self.session))

    def _save(self, event: Any) -> None:
        art = event.artifact
        if event.step is None or art.get("kind") != "image":  # the user's own attachments are not re-saved
            console.print(event.line(), style="cyan", markup=False, highlight=False)
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        ext = (art.get("mime") or "image/png").split("/")[-1]
        path = self.out_dir / f"{art['id']}.{ext}"
        path.write_bytes(self.agent.artifacts(self.session).read_bytes(art["id"]))
        console.print(f"[artifact {art['id']} saved to {path}]", style="cyan", markup=False, highlight=False)

    def _end_line(self) -> None:
        if self._mid_line:
            console.print()
            self._mid_line = False

    # -- commands ------------------------------------------------------------------------------------

    def _attach(self, bucket: list[Path]) -> Callable[[list[str]], None]:
        def attach(args: list[str]) -> None:
            if len(args) != 1:
                raise ValueError("give one file path, e.g. /image examples/sign.png")
            path = Path(args[0]).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            bucket.append(path)
            console.print(f"attached {path} (goes with your next message)", highlight=False)

        return attach

    def feedback(self, args: list[str]) -> None:
        from mmagent.feedback import FeedbackStore, parse_correct_call, record_feedback

        if not self.last_turn:
            raise ValueError("no turn to rate yet in this chat")
        if not args or args[0] not in ("up", "down") or len(args) not in (1, 3) or (len(args) == 3 and args[1] not in ("--call", "--answer")):
            raise ValueError("usage: /feedback up|down [--call JSON | --answer TEXT]")
        calls = parse_correct_call(args[2]) if args[1:2] == ["--call"] else None
        answer = args[2] if args[1:2] == ["--answer"] else None
        log = self.agent.log
        fb = record_feedback(FeedbackStore(log.path), log, self.agent.registry, self.last_turn, args[0], calls, answer, source="chat")
        console.print(f"feedback {fb.id} stored for turn {fb.turn_id}", highlight=False)

    def history(self, _: list[str]) -> None:
        for m in self.agent.history(self.session):
            media = f" [{', '.join(m.images + m.audio)}]" if m.images or m.audio else ""
            calls = " ".join(f"<{c.name} {json.dumps(c.arguments)}>" for c in m.tool_calls)
            console.print(f"[bold]{m.role}[/]" + escape(f"{media}: {m.content} {calls}".rstrip()), highlight=False)

    def tools(self, _: list[str]) -> None:
        for name in self.agent.registry.names():
            console.print(f"{name}: {self.agent.registry.get(name).description.splitlines()[0]}", highlight=False)
