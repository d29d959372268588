"""Serving adapter versions: what a new session loads, and chat models for the gate's evaluation.

The registry's `current` pointer is read at session start (`activate_serving`), never cached
across sessions, so a version promoted by `mmagent learn` in another process reaches every new
session without a restart, and a session already running keeps the version it started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmagent.continual.registry import AdapterRegistry, default_registry


def activate_serving(mmllm: Any, registry: AdapterRegistry | None = None) -> str | None:
    """Loads the promoted version into an `MMLLM` (once per version) and makes it active.

    Returns the version name, or None when nothing is promoted (the model keeps its own default
    adapter). Call it when a session starts.
    """
    serving = (registry or default_registry()).serving()
    if serving is None:
        return None
    if serving.version not in mmllm.adapters:
        mmllm.load_adapter(serving.path, serving.version)
    mmllm.set_adapter(serving.version)
    return serving.version


class AdapterChatModels:
    """`adapter folder | None -> ChatModel` over ONE loaded MM-LLM, switching peft adapters.

    The base model is loaded once (the expensive part); each evaluated version is loaded as a
    named adapter and made active. None serves the model's own default adapter (or the bare base).
    """

    def __init__(self, load_mmllm: Callable[[], Any], name: str = "mmllm"):
        self._load = load_mmllm
        self._mmllm: Any = None
        self._default: str | None = None
        self.name = name

    @property
    def mmllm(self) -> Any:
        if self._mmllm is None:
            self._mmllm = self._load()
            self._default = self._mmllm.active_adapter
        return self._mmllm

    def __call__(self, adapter: Path | None):
        from mmagent.backends.composed import ComposedChatModel

        m = self.mmllm
        if adapter is None:
            m.set_adapter(self._default)
        else:
            adapter = Path(adapter)
            name = f"{adapter.parent.name}-{adapter.name}".replace(".", "_")
            if name not in m.adapters:
                m.load_adapter(adapter, name)
            m.set_adapter(name)
        return ComposedChatModel(m, self.name)
