"""`mmagent tools`: list the built-in tools, show one's schema, call one by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from mmagent.cli.common import EXIT_FAILED, EXIT_USER, TOOLS_JSON_HELP, console, fail, print_json

app = typer.Typer(help="The typed tools the agent can call: list them, show schemas, call one.", no_args_is_help=True)


ToolsJsonOpt = Annotated[Optional[Path], typer.Option("--tools-json", help=TOOLS_JSON_HELP)]


def _registry():
    from mmagent.tools.registry import default_registry

    return default_registry()


def _with_schemas(reg, tools_json: Path | None):
    """`reg` plus the `--tools-json` schemas when given (a bad file: one line, exit 2)."""
    from mmagent.tools.schema_tool import load_tool_schemas

    from mmagent.errors import UserError

    try:
        for t in load_tool_schemas(tools_json) if tools_json else []:
            reg.register(t)
    except (UserError, FileNotFoundError) as err:
        fail(str(err))
    return reg


@app.command("list")
def list_tools(json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
               tools_json: ToolsJsonOpt = None) -> None:
    """Lists every built-in tool (and the --tools-json ones) with its arguments (nothing is loaded).
    `external` marks a tool the caller runs (a schema without a handler).

    Example: mmagent tools list --json --tools-json my-tools.json
    """
    reg = _with_schemas(_registry(), tools_json)
    rows = []
    for name in reg.names():
        params = reg.get(name).schema()["function"]["parameters"]
        rows.append({"name": name, "description": reg.get(name).description, "arguments": list(params.get("properties", {})),
                     "required": params.get("required", []), "external": reg.get(name).external})
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "arguments", "description")
    for r in rows:
        args = ", ".join(a + ("" if a in r["required"] else "?") for a in r["arguments"])
        table.add_row(r["name"], args, ("(the caller runs it) " if r["external"] else "") + r["description"])
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Tool name (see `mmagent tools list`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the OpenAI-style function schema as JSON.")] = False,
    tools_json: ToolsJsonOpt = None,
) -> None:
    """Shows one tool's input schema (what the model sees) and output schema.

    Example: mmagent tools show crop_image --json
    """
    from mmagent.tools.registry import UnknownToolError

    try:
        t = _with_schemas(_registry(), tools_json).get(name)
    except UnknownToolError as err:
        fail(str(err))
    doc = {"schema": t.schema(), "output": t.output_schema()}
    if json_out:
        print_json(doc)
        return
    console.print(f"[bold]{t.name}[/]: {t.description}")
    params = doc["schema"]["function"]["parameters"]
    for arg, spec in params.get("properties", {}).items():
        req = "required" if arg in params.get("required", []) else f"default {json.dumps(spec.get('default'))}"
        kind = spec.get("type") or spec.get("$ref", "").split("/")[-1] or "/".join(s.get("type", "?") for s in spec.get("anyOf", []))
        console.print(f"  {arg} ({kind}, {req}): {spec.get('description', '')}", highlight=False)
    console.print(f"  returns: {', '.join(doc['output'].get('properties', {}))}", highlight=False)


@app.command("call")
def call(
    name: Annotated[str, typer.Argument(help="Tool name.")],
    args: Annotated[str, typer.Option("--args", help="Arguments as a JSON object; attached media are image_1, audio_1, ... in order.")] = "{}",
    image: Annotated[Optional[list[Path]], typer.Option("--image", help="Attach an image file (repeatable).")] = None,
    audio: Annotated[Optional[list[Path]], typer.Option("--audio", help="Attach a WAV file (repeatable).")] = None,
    session: Annotated[str, typer.Option(help="Artifact session; ids persist across calls in one session.")] = "cli",
    timeout: Annotated[Optional[float], typer.Option(help="Seconds (> 0) before the call is abandoned (default 300); see --no-timeout.", show_default=False)] = None,
    no_timeout: Annotated[bool, typer.Option("--no-timeout", help="Wait for the tool however long it takes.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the ToolResult as JSON (also when the call fails).")] = False,
) -> None:
    """Calls one tool as the agent would: validated, timed out, errors as observations.

    stdout holds only the result: the tool's output, or with --json the ToolResult object (for a
    failed call too: "ok": false, "error", "error_kind", "details"). A failed call also prints one
    `error: KIND: message` line on stderr and exits 2 (validation, unknown tool) or 1 (timeout, the
    tool raised). Errors before any call (bad --args, a missing file, a bad --timeout, a broken
    tools module) print only that stderr line, exit 2, and leave stdout empty, --json or not.

    Example: mmagent tools call read_text --image sign.png --args '{"image": "image_1"}'
    """
    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import NO_TIMEOUT

    from mmagent.media.artifacts import ArtifactError, ArtifactStore
    from mmagent.protocol.toolcall import MAX_JSON_DEPTH, loads_json

    if no_timeout and timeout is not None:
        fail("give --timeout SECONDS or --no-timeout, not both")
    if timeout is not None and not (0 < timeout < math.inf):
        fail(f"--timeout must be a positive number of seconds, got {timeout:g}; pass --no-timeout to wait however long the tool takes")
    timeout_s = NO_TIMEOUT if no_timeout else 300.0 if timeout is None else timeout
    try:
        arguments = loads_json(args)
    except ValueError as err:  # invalid JSON, nested over MAX_JSON_DEPTH, a number too long to read
        fail(f"--args is not valid JSON ({err}); pass an object (nested at most {MAX_JSON_DEPTH} levels) such as '{{\"image\": \"image_1\"}}'")
    store = ArtifactStore.open(session)
    try:
        attached = [store.add_image(p).id for p in image or []] + [store.add_audio(p).id for p in audio or []]
    except ArtifactError as err:
        fail(str(err))
    reg = _registry()
    if name in reg and isinstance(arguments, dict):
        _fill_media(arguments, reg.get(name).schema()["function"]["parameters"], attached)
    memory = _memory() if name in ("remember", "search_memory") else None
    result = reg.call(name, arguments, ToolContext(artifacts=store, memory=memory, session=session), timeout_s=timeout_s)
    if json_out:
        print_json({"attached": attached, **result.model_dump(mode="json")})
    else:
        if attached:
            console.print(f"attached: {', '.join(attached)}", highlight=False, markup=False)
        if result.ok:  # the output for a person (the model reads `result.observation()`)
            console.print(json.dumps(result.output, ensure_ascii=False, separators=(",", ":")), highlight=False, soft_wrap=True, markup=False)
        for aid in result.artifacts:
            console.print(f"new artifact {aid}: {store.get(aid).meta}", highlight=False, markup=False, soft_wrap=True)
    if not result.ok:  # the human-readable error goes to stderr in both modes; stdout keeps the result
        fail(f"{result.error_kind}: {result.error}", EXIT_FAILED if result.error_kind in ("timeout", "exception") else EXIT_USER)


def _memory():
    """The same memory store `mmagent run` and `mmagent memory` use (its embedder loads lazily)."""
    from mmagent.memory.store import MemoryStore

    from mmagent.config import get_settings

    return MemoryStore(get_settings().home / "memory")


def _fill_media(arguments: dict, params: dict, attached: list[str]) -> None:
    """Convenience: a required media argument left out takes the first attached file of its kind."""
    from mmagent.tools.base import artifact_fields

    for field, kind in artifact_fields(params).items():
        first = next((a for a in attached if a.startswith(kind + "_")), None)
        if field not in arguments and field in params.get("required", []) and first:
            arguments[field] = first
