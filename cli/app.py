"""The `mmagent` command: one sub-app per area, joined here.

Sub-app modules keep heavy imports (torch, transformers) inside their commands so that
`mmagent --help` answers at once.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mmagent.cli import models
from mmagent.cli import memory as memory_cli
from mmagent.cli import tools as tools_cli
from mmagent.cli import run as run_cmd
from mmagent.cli import chat as chat_cmd
from mmagent.cli import learn as learn_cli
from mmagent.cli import train as train_cli
from mmagent.cli import turns as turns_cli
from mmagent.cli import serve as serve_cli
from mmagent.cli import mcp as mcp_cli
from mmagent.cli.common import report

app = typer.Typer(
    name="mmagent",
    help="mmagent: an agent that sees images, hears audio, calls typed tools, remembers, and learns from feedback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(tools_cli.app, name="tools")
app.add_typer(memory_cli.app, name="memory")
app.command("run")(run_cmd.run)
app.command("resume")(run_cmd.resume)
app.command("abandon")(run_cmd.abandon)
app.command("chat")(chat_cmd.chat)
app.add_typer(turns_cli.app, name="turns")
app.command("feedback")(learn_cli.feedback)
app.command("learn")(learn_cli.learn)
app.add_typer(learn_cli.adapters_app, name="adapters")
app.add_typer(train_cli.app, name="train")
app.command("eval")(train_cli.evaluate)
app.command("serve")(serve_cli.serve)
app.command("mcp")(mcp_cli.mcp)


def package_version() -> str:
    """The installed distribution's version (the source tree's `__version__` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmagent")
    except PackageNotFoundError:
        from mmagent import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mmagent {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress logs.")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    """Console-script entry: user errors become one line and an exit code."""
    import os
    import sys

    # The CLI draws its own bars (downloads, training, eval); transformers' per-load "Loading
    # weights" bars would interleave with them. Read by huggingface_hub when transformers loads.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    debug = "--debug" in sys.argv
    try:
        # With standalone_mode=False click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        raise SystemExit(code if isinstance(code, int) else 0)
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - the CLI's one place that turns errors into lines
        if hasattr(err, "show") and hasattr(err, "exit_code"):  # click's usage errors (typer vendors click)
            err.show()
            raise SystemExit(err.exit_code) from None
        if type(err).__name__ == "Abort":  # Ctrl-C / Ctrl-D at a prompt
            raise SystemExit(130) from None
        try:
            report(err, debug)
        except typer.Exit as e:
            raise SystemExit(e.exit_code) from None
