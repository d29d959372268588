"""`mmagent train RECIPE` (a sub-app, one command per recipe) and `mmagent eval SUITE` (a command the
root app registers): the recipes in recipes/ from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from mmagent.cli.common import CONSTRAINED_HELP, console, fail, print_json, progress

app = typer.Typer(help="Train a recipe: tool-tuning (LoRA tool calling) or align (projector).", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Recipe YAML (recipes/configs/...); its first line is the launch command.")]
OverridesArg = Annotated[list[str] | None, typer.Argument(help="key=value overrides with dotted keys and YAML values, e.g. steps=20 lora.r=8.")]


def _load(cls, config: Path | None, overrides: list[str] | None):
    from mmagent.recipes.recipe_config import load_config

    try:
        return load_config(cls, config, overrides or [])
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))


@app.command("tool-tuning")
def tool_tuning(config: ConfigOpt = None, overrides: OverridesArg = None,
                json_: Annotated[bool, typer.Option("--json", help="Print the result folder and final metrics as JSON.")] = False) -> None:
    """LoRA tool-calling instruction tuning; resumes from the newest checkpoint in `out`.

    Example: mmagent train tool-tuning --config recipes/configs/tools-tiny-cpu.yaml steps=20 out=runs/t1
    """
    from mmagent.recipes.tool_tuning import ToolTuningConfig, train

    cfg = _load(ToolTuningConfig, config, overrides)
    with progress("tool-tuning", cfg.steps, enabled=not json_) as update:
        adapter = train(cfg, on_step=lambda row: update(row["step"], f"loss {row['loss']:.4f}"))
    _report(adapter, Path(cfg.out), json_)


@app.command("align")
def align(config: ConfigOpt = None, overrides: OverridesArg = None,
          json_: Annotated[bool, typer.Option("--json", help="Print the result folder and final metrics as JSON.")] = False) -> None:
    """MM alignment (LLaVA stage 1): trains the projector on true image descriptions, encoder and LLM frozen.

    Example: mmagent train align --config recipes/configs/align-tiny-cpu.yaml
    """
    from mmagent.recipes.align import AlignConfig, train

    cfg = _load(AlignConfig, config, overrides)
    result = train(cfg)
    _report(result, Path(cfg.out), json_)


def _report(result: Path, out: Path, json_: bool) -> None:
    import json

    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()] if (out / "metrics.jsonl").is_file() else []
    last = next((r for r in reversed(rows) if "loss" in r), {})
    val = next((r["val_loss"] for r in reversed(rows) if "val_loss" in r), None)
    if json_:
        print_json({"result": str(result), "out": str(out), "steps": last.get("step"), "loss": last.get("loss"), "val_loss": val})
    else:
        console.print(f"trained {last.get('step')} steps, loss {last.get('loss', float('nan')):.4f}, validation {val}; result in {result}")


def evaluate(
    suite: Annotated[Path, typer.Argument(help="Suite file (.jsonl): id, prompt, images, expected calls (and optionally the item's own tool schemas) per line.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Chat model spec (catalog name, folder, vlm:..., http(s)://.../v1#model, scripted:FILE.json).")] = "mmagent-default",
    constrained: Annotated[Optional[bool], typer.Option("--constrained/--free", help=CONSTRAINED_HELP, show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N items.", min=1)] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Generation budget per model step.", min=1)] = 128,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the full report (per-item scores) as JSON here.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
    retrieval: Annotated[bool, typer.Option("--tool-retrieval/--all-tools", help="Offer the model only the item's tools that fit "
                                            "the request (the agent's default; the built-ins are always offered) or every tool.")] = True,
    with_builtins: Annotated[bool, typer.Option("--with-builtins", help="Offer the built-in tools beside an item's own tools, "
                                                "as `Agent(tools=[...])` and `mmagent run --tools-json` do (default: only the item's, as the OpenAI endpoint).")] = False,
    tools_json: Annotated[Optional[Path], typer.Option("--tools-json", help="A JSON file of the user's tool schemas, offered beside the built-ins "
                                                       "to items without their own tools: the built-in suites as an agent with custom tools serves them.")] = None,
) -> None:
    """Runs a tool-calling suite against a model and reports parse rate, decision, tool-name and
    argument accuracy, strict success, hallucinated-tool rate, node/edge F1, abstention rate and
    parallel-call rate, overall and per item kind (see README). Items may bring their own tools.

    Example: mmagent eval recipes/suites/unseen-phrasings.jsonl --constrained --json
    """
    from mmagent.recipes.eval import evaluate as run
    from mmagent.recipes.eval import markdown_table, save_report
    from mmagent.training.scoring import load_suite

    try:
        load_suite(suite)  # a bad suite fails before any model loads
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    extra = None
    if tools_json is not None:
        from mmagent.tools.registry import default_registry
        from mmagent.tools.schema_tool import ToolSchemaError, load_tool_schemas

        try:
            extra = [*default_registry().schemas(), *(t.schema() for t in load_tool_schemas(tools_json))]
        except (ToolSchemaError, OSError, ValueError) as err:
            fail(f"--tools-json {tools_json}: {err}")
    from mmagent.cli.run import resolve_model

    from mmagent.backends import load_chat_model
    from mmagent.protocol.chat import resolve_constrained

    chat = resolve_model(model)  # scripted:FILE.json works here as in run and chat
    if isinstance(chat, str):
        chat = load_chat_model(chat)
    try:
        constrained = resolve_constrained(chat, constrained)
    except ValueError as err:
        fail(str(err))
    if retrieval:
        from mmagent.backends.tool_retrieval import RetrievingChatModel

        chat = RetrievingChatModel(chat)
    total = len(load_suite(suite)[:limit])
    with progress(f"eval {suite.name}", total, enabled=not json_) as update:
        report = run(chat, suite, extra, constrained=constrained, limit=limit, max_new_tokens=max_new_tokens, with_builtins=with_builtins,
                     on_item=lambda s: update(note=f"{s.id}: {'ok' if s.strict else 'FAIL'}"))
    if out:
        save_report(report, out)
    if json_:
        print_json(report.model_dump(mode="json", exclude={"items"}))
    else:
        label = f"{model}{' (constrained)' if constrained else ''}{'' if retrieval else ' (all tools)'}{' (+ built-ins)' if with_builtins else ''}{f' (+ {tools_json.name})' if tools_json else ''} on {suite.name}"
        kinds = {f"{label} [{k}]": m for k, m in report.by_kind.items()} if len(report.by_kind) > 1 else {}
        console.print(markdown_table({label: report.metrics, **kinds}))
