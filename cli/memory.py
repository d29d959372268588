"""`mmagent memory`: add to, search, inspect and maintain the multimodal memory.

The store lives at `<home>/memory` (settings `home`, env `MMAGENT_HOME`) unless `--path` says
otherwise. Commands that do not embed (delete, stats, export) never load a model.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mmagent.cli.common import console, fail, print_json, progress

app = typer.Typer(help="The multimodal memory: remember text, images and audio; search by text or image.", no_args_is_help=True)

class ModalityChoice(str, Enum):
    text = "text"
    image = "image"
    audio = "audio"


def embedder_spec(spec: str) -> str:
    """Checks --embedder when the command line is parsed (a usage error, exit 2)."""
    if spec in ("default", "no-ocr") or (spec.startswith("clip:") and spec != "clip:"):
        return spec
    raise typer.BadParameter(f"{spec!r} is none of default, no-ocr, clip:FOLDER")


PathOpt = Annotated[Optional[Path], typer.Option("--path", help="Memory folder (default: <home>/memory).")]
EmbedderOpt = Annotated[
    str,
    typer.Option("--embedder", metavar="<default|no-ocr|clip:FOLDER>", callback=embedder_spec,
                 help="'default' (MiniLM + image bridge with OCR), 'no-ocr' (bridge without OCR), or 'clip:FOLDER' (CLIP/SigLIP weights)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", help="The namespace (a user's or an agent session's memories); add: default 'default', search: default all.")]


def store_path(path: Path | None) -> Path:
    from mmagent.config import get_settings

    return path or get_settings().home / "memory"


def make_embedder(spec: str):
    """The embedder a command uses; `spec` is the --embedder option."""
    from mmagent.memory.embedders import ClipEmbedder, default_embedder

    if spec == "default":
        return default_embedder(ocr=True)
    if spec == "no-ocr":
        return default_embedder(ocr=False)
    if spec.startswith("clip:"):
        return ClipEmbedder(Path(spec.removeprefix("clip:")).expanduser())
    fail(f"unknown --embedder {spec!r}: use 'default', 'no-ocr' or 'clip:FOLDER'")


def open_store(path: Path | None, embedder: str | None = None, readonly: bool = False, reembed: bool = False, create: bool = False,
               on_reembed=None, namespace: str | None = None):
    from mmagent.memory.store import MemoryStore

    folder = store_path(path)
    if not create and not (folder / "memory.sqlite").is_file():
        fail(f"no memory at {folder} yet: add something first (mmagent memory add \"...\")")
    return MemoryStore(folder, make_embedder(embedder) if embedder else None, readonly=readonly, reembed=reembed, on_reembed=on_reembed,
                       namespace=namespace)


def check_image_file(image: Path):
    """The image a command was given, opened and checked (size from stat, pixels from the header,
    a full decode) before any model loads: a bad file is a one-line exit 2 at once."""
    from mmagent.memory.content import open_image

    if not image.is_file():
        fail(f"no such file: {image}")
    return open_image(image)  # UnsupportedContentError (a UserError): exit 2


@app.command("add")
def add(
    text: Annotated[Optional[str], typer.Argument(help="Text to remember (with --image: its caption; with --audio: its transcript).")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="An image file to remember.")] = None,
    audio: Annotated[Optional[Path], typer.Option("--audio", help="A WAV file to remember (by its transcript).")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="A tag (repeatable).")] = None,
    session: Annotated[Optional[str], typer.Option("--session", help="Session name to file it under.")] = None,
    source: Annotated[str, typer.Option("--source", help="Where it came from.")] = "cli",
    namespace: NamespaceOpt = None,
    path: PathOpt = None,
    embedder: EmbedderOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """Remembers text, an image or an audio clip.

    Example: mmagent memory add "the spare key is under the blue pot" --tag home
    """
    if image and audio:
        fail("give --image or --audio, not both")
    if not (text and text.strip()) and not image and not audio:
        fail("nothing to add: give TEXT, --image FILE or --audio FILE")
    for f in (image, audio):
        if f is not None and not f.is_file():
            fail(f"no such file: {f}")
    picture = check_image_file(image) if image else None  # before the model loads
    kw = {"tags": tag or [], "session": session, "source": source, "namespace": namespace}
    with open_store(path, embedder, create=True) as store:
        if picture is not None:
            item = store.add_image(picture, caption=text, **kw)
        elif audio:
            item = store.add_audio(audio, transcript=text, **kw)
        else:
            item = store.add_text(text, **kw)
    if json_out:
        print_json(item)
    else:
        console.print(f"[green]remembered[/] #{item.id} ({item.modality}): {item.text}", highlight=False)


@app.command("search")
def search(
    query: Annotated[Optional[str], typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Search by this image instead of text.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 5,
    modality: Annotated[Optional[list[ModalityChoice]], typer.Option("--modality", "-m", help="Only text, image or audio (repeatable).")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="Only items with one of these tags (repeatable).")] = None,
    all_tags: Annotated[bool, typer.Option("--all-tags", help="Require every --tag instead of any.")] = False,
    session: Annotated[Optional[str], typer.Option("--session", help="Only this session.")] = None,
    since: Annotated[Optional[datetime], typer.Option("--since", help="Only items created at or after (ISO date/time).")] = None,
    until: Annotated[Optional[datetime], typer.Option("--until", help="Only items created before (ISO date/time).")] = None,
    namespace: NamespaceOpt = None,
    path: PathOpt = None,
    embedder: EmbedderOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """Finds the memories closest to a text or an image, optionally filtered.

    Example: mmagent memory search "where is the key" -k 3 --tag home --json
    """
    if (query is None or not query.strip()) == (image is None):
        fail("give exactly one of QUERY or --image FILE")
    if k <= 0:
        fail(f"-k must be a positive integer, got {k}")
    q = query if image is None else check_image_file(image)  # a bad image fails here, before any model loads
    filters = {"modality": [m.value for m in modality or []], "session": session, "since": since, "until": until, ("tags_all" if all_tags else "tags_any"): tag}
    filters = {key: v for key, v in filters.items() if v}
    with open_store(path, embedder, readonly=True, namespace=namespace) as store:
        hits = store.search(q, k=k, filters=filters or None)
    if json_out:
        print_json(hits)
        return
    from rich.table import Table

    table = Table("id", "score", "modality", "text", "tags", "created")
    for h in hits:
        table.add_row(str(h.id), f"{h.score:.3f}", h.modality, h.text[:100], ",".join(h.tags), h.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table if hits else "no matches")


@app.command("delete")
def delete(
    ids: Annotated[list[int], typer.Argument(help="Ids of the memories to forget.")],
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Forgets memories by id (ids never come back).

    Example: mmagent memory delete 3 7
    """
    with open_store(path) as store:
        gone = store.delete(ids)
    missing = sorted(set(ids) - set(gone))
    if json_out:
        print_json({"deleted": gone, "not_found": missing})
        return
    console.print(f"deleted {len(gone)}" + (f"; not found: {', '.join(map(str, missing))}" if missing else ""))
    if not gone:
        raise typer.Exit(1)


@app.command("stats")
def stats(path: PathOpt = None, json_out: JsonOpt = False) -> None:
    """Counts by modality, index kind and size, embedding space, disk use.

    Example: mmagent memory stats --json
    """
    with open_store(path, readonly=True) as store:
        st = store.stats()
    if json_out:
        print_json(st)
        return
    idx = st["index"]
    console.print(
        f"{st['items']} items {st['by_modality']} in {st['path']}\n"
        f"space {st['space']} ({st['dim']}-d); index {idx['kind']} with {idx['ntotal']} vectors"
        + (f", nlist {idx['nlist']}, nprobe {idx['nprobe']}" if idx["nlist"] else "")
        + f"; {st['disk_bytes'] / 1e6:.1f} MB on disk; consistent: {st['consistent']}",
        highlight=False,
    )


@app.command("rebuild")
def rebuild(
    reembed: Annotated[bool, typer.Option("--reembed", help="Re-embed every item with --embedder (after switching embedders).")] = False,
    compact: Annotated[bool, typer.Option("--compact", help="Also VACUUM SQLite and drop unreferenced media.")] = False,
    path: PathOpt = None,
    embedder: EmbedderOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """Rebuilds the index from SQLite (and with --reembed, every vector with the chosen embedder).

    Example: mmagent memory rebuild --reembed --embedder clip:~/models/clip-vit-b32
    """
    if reembed:  # a model runs per item: a bar (re-embedding happens at open when the space changed)
        with progress("memory: re-embedding", None, enabled=not json_out) as update:
            note = lambda done, total: update(done, f"{done}/{total} items")  # noqa: E731
            with open_store(path, embedder, reembed=True, on_reembed=note) as store:
                st = store.stats() if store.reembedded else store.rebuild(reembed=True, on_item=note)
                st = store.compact() if compact else st
    else:
        with open_store(path) as store:
            st = store.compact() if compact else store.rebuild()
    if json_out:
        print_json(st)
    else:
        console.print(f"rebuilt: {st['items']} items, index {st['index']['kind']}, space {st['space']}", highlight=False)


@app.command("export")
def export(folder: Annotated[Path, typer.Argument(help="A new folder to write items.jsonl, vectors.npy and media/ into.")], path: PathOpt = None) -> None:
    """Exports every memory as JSON Lines + a float32 .npy of vectors + media (no pickle).

    Example: mmagent memory export ./memory-backup
    """
    with open_store(path, readonly=True) as store:
        n = store.export(folder)
    console.print(f"exported {n} items to {folder}")


@app.command("import")
def import_(folder: Annotated[Path, typer.Argument(help="A folder written by `mmagent memory export`.")], path: PathOpt = None) -> None:
    """Imports an export into this memory (same embedding space; ids are assigned anew).

    The bundle is checked whole before anything is written: a path leading outside it or the
    store, a media file that is no image within limits, or a malformed record refuses it (exit 2).

    Example: mmagent memory import ./memory-backup
    """
    from mmagent.memory.transfer import check_bundle, import_store

    bundle = check_bundle(folder, store_path(path) / "media")  # before the store is created or opened
    with open_store(path, create=True) as store:
        ids = import_store(store, folder, bundle)
    console.print(f"imported {len(ids)} items")
