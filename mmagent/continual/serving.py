"""Serving adapter versions: what a new session loads, and chat models for the gate's evaluation.

The registry's `current` pointer is read at session start (`activate_serving`), never cached
across sessions, so a version promoted by `mmagent learn` in another process reaches every new
session without a restart, and a session already running keeps the version it started with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmagent.continual.adapter_slots import loaded_name, slot_root
from mmagent.continual.registry import AdapterRegistry, default_registry
from mmagent.protocol.chat import AdapterHost

log = logging.getLogger(__name__)


def activate_serving(mmllm: AdapterHost, registry: AdapterRegistry | None = None,
                     failed: dict[str, str] | None = None, slot: str | None = None) -> str | None:
    """Loads the promoted version into an `MMLLM` (once per version) and makes it active.

    Returns the version name, or None when nothing is promoted (the model keeps its own default
    adapter). Call it when a session starts. A version that fails to load is skipped for the
    previous good one (the pointer's `previous`, newest first; at worst the model's own adapter),
    with a warning; `failed` (version -> why) remembers such versions so that they are tried and
    reported once (versions are never changed in place). A routed `slot`'s registry
    (`mmagent.continual.adapter_slots`) loads its version under the slot's name and leaves the active
    adapter alone: the composed model's routing serves it on the replies of that slot.
    """
    failed = {} if failed is None else failed
    registry = registry or default_registry()
    read = registry.read_pointer()
    if read.problem and failed.get(_POINTER) != read.problem:
        failed[_POINTER] = read.problem
        log.warning("%s", read.problem)
    if read.pointer is None:
        return None
    chain = [read.pointer.version, *read.pointer.previous]
    new: list[str] = []  # failed in this call (reported below, once: later calls skip them)
    for version in chain:
        if version in failed:
            continue
        name = loaded_name(slot, version)
        try:
            if name not in mmllm.adapters:
                mmllm.load_adapter(registry.adapter_path(version), name)
            if slot is None:
                mmllm.set_adapter(name)
        except Exception as err:  # noqa: BLE001 - any load failure: the session runs on an older version
            failed[version] = f"{type(err).__name__}: {str(err).strip()[:200]}"
            new.append(version)
            continue
        _say_fallback(new, failed, f"{version} (the previous good version)")
        return name
    _say_fallback(new, failed, f"the model's own {slot or ''} adapter (no promoted version loads)".replace("  ", " "))
    return None


_POINTER = "(pointer)"


def _say_fallback(bad: list[str], failed: dict[str, str], instead: str) -> None:
    if bad:
        why = "; ".join(f"{v}: {failed[v]}" for v in bad)
        log.warning("adapter version%s %s failed to load (%s); serving %s instead. Promote a good version "
                    "(`mmagent adapters promote VERSION`) or roll back (`mmagent adapters rollback`)",
                    "s" if len(bad) > 1 else "", ", ".join(bad), why, instead)


class PromotedAdapter:
    """The learning loop's `AdapterHook` for a composed model (see `mmagent.protocol.chat.ServesSessions`):
    a new session runs with the version promoted in `registry` (default `<home>/adapters`, read
    at each new session: a promotion needs no restart), or the previous good one if it fails to load.
    `import mmagent` registers it as the default hook (`mmagent.protocol.adapter_hook`), which the
    agent and the server install on a model without one."""

    def __init__(self, registry: AdapterRegistry | None = None) -> None:
        self.registry = registry
        self.failed: dict[str, str] = {}  # version -> why it did not load in this process
        self._slot_failed: dict[str, dict[str, str]] = {}  # the same, per routed slot

    def __call__(self, mmllm: AdapterHost) -> str | None:
        return activate_serving(mmllm, self.registry, self.failed)

    def routes(self, mmllm: AdapterHost, slots: list[str]) -> dict[str, str]:
        """For each routed slot with a promoted version that loads: the name it is loaded under
        (`mmagent.continual.adapter_slots`); a slot without one keeps the folder's own adapter."""
        root = (self.registry or default_registry()).root
        out = {}
        for slot in slots:
            failed = self._slot_failed.setdefault(slot, {})
            name = activate_serving(mmllm, AdapterRegistry(slot_root(root, slot)), failed, slot)
            if name is not None:
                out[slot] = name
        return out


class AdapterChatModels:
    """`adapter folder | None -> ChatModel` over ONE loaded MM-LLM, switching peft adapters.

    The base model is loaded once (the expensive part); each evaluated version is loaded as a
    named adapter. None serves the model's own default adapter (or the bare base). With a routed
    `slot` (`mmagent.continual.adapter_slots`) the version serves that slot's replies and the folder's
    own adapter the rest, as a session would serve a version promoted for the slot; `retrieval`
    (a `ToolRetriever`) offers each reply the tools the agent's tool retrieval would (it decides
    which slot serves a reply), so the gate measures what serving does.
    """

    def __init__(self, load_mmllm: Callable[[], Any], name: str = "mmllm", slot: str | None = None, retrieval: Any = None):
        self._load = load_mmllm
        self._mmllm: Any = None
        self._default: str | None = None
        self.name = name
        self.slot = slot
        self.retrieval = retrieval

    @property
    def mmllm(self) -> Any:
        if self._mmllm is None:
            self._mmllm = self._load()
            self._default = self._mmllm.active_adapter
        return self._mmllm

    def __call__(self, adapter: Path | None):
        from mmagent.backends.composed import ComposedChatModel

        m = self.mmllm
        name = None
        if adapter is not None:
            adapter = Path(adapter)
            name = "-".join(filter(None, (self.slot, adapter.parent.name, adapter.name))).replace(".", "_")
            if name not in m.adapters:
                m.load_adapter(adapter, name)
        if self.slot is None:
            m.set_adapter(name or self._default)
            chat = ComposedChatModel(m, self.name)
        else:
            m.set_adapter(self._default)
            chat = ComposedChatModel(m, self.name, routes={self.slot: name} if name else None)
        if self.retrieval is None:
            return chat
        from mmagent.backends.tool_retrieval import RetrievingChatModel

        return RetrievingChatModel(chat, self.retrieval)


def folder_chat_models(folder: Path, name: str, slot: str | None = None, retrieval: bool = False, settings=None) -> AdapterChatModels:
    """The gate's `AdapterChatModels` over the composed MM-LLM in `folder`, loaded in fp32 (the round's
    own process and its evaluation workers, `eval_workers`, build theirs alike); with `retrieval`, behind
    the agent's tool retrieval, which picks the slot of each reply as serving does."""

    def load_mmllm():
        import torch

        from mmagent.config import get_settings
        from mmagent.model.mmllm import MMLLM

        return MMLLM.from_pretrained(folder, settings or get_settings(), dtype=torch.float32)

    retriever = None
    if retrieval:
        from mmagent.backends.tool_retrieval import ToolRetriever

        retriever = ToolRetriever()
    return AdapterChatModels(load_mmllm, name, slot, retriever)
