"""Adapter slots: the learning loop keeps versions per routed adapter of a composed model.

A folder with `routing` (`mmagent.model.adapter_routing`) serves a reply with one of two adapters:
its own (`tools`, tuned on the built-ins) or `open-world` (the user's tools). Each is a slot with
its own version registry, so feedback on replies the open-world adapter served trains a version of
it, and the built-in replies keep theirs untouched (one adapter trained on a custom tool's
corrections forgot the built-ins: detect_objects 75 -> 38 in the gate, bench/learn.py embedded):

    <home>/adapters/                      the folder's own slot (as before routing existed)
    <home>/adapters/routes/open-world/    the `open-world` slot: versions, pointer, rounds, history

A slot's version `v0002` is loaded into the model under the name `open-world-v0002`, so the
interaction log's adapter column tells which slot served a turn.
"""

from __future__ import annotations

from pathlib import Path

ROUTES = "routes"


def slot_root(root: Path, slot: str | None) -> Path:
    """The registry folder of `slot` (None: the folder's own adapter) under a model's registry `root`."""
    return Path(root) if slot is None else Path(root) / ROUTES / slot


def loaded_name(slot: str | None, version: str) -> str:
    """The adapter name a slot's version is loaded under (the own slot keeps bare version names)."""
    return version if slot is None else f"{slot}-{version}"


def slot_of(adapter: str | None, routed: list[str]) -> str | None:
    """The slot that served a turn, from the adapter the log recorded: a routed slot's own adapter
    (`open-world`) or one of its versions (`open-world-v0002`); anything else is the own slot (None)."""
    for slot in routed:
        if adapter == slot or (adapter or "").startswith(f"{slot}-v"):
            return slot
    return None
