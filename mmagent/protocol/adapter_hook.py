"""Which adapter a new session runs with, by default: one process-wide registration slot.

A model that serves sessions (`mmagent.protocol.chat.ServesSessions`, a composed MM-LLM) asks its
`adapter_hook` at a session's first turn. Whoever drives such a model (the agent, the server's
OpenAI endpoint) gives it the hook registered here when it has none (`install`); the agent and
the backends know no learning loop, they only read this slot.

The entry layer fills it: `import mmagent` (the top-level package, always imported first)
registers the learning loop's factory, `mmagent.continual.serving.PromotedAdapter` (imported
when a session first needs it), so `mmagent run / chat / serve` and `Agent(model=...)` serve the
version `mmagent learn` promoted. `register(None)` turns that off; another factory replaces it.

Standard library only: the top-level package imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HookFactory = Callable[[Any], Any]
"""An adapter registry (an `AdapterRegistry`; None: the default `<home>/adapters`) -> an `AdapterHook`."""

_factory: HookFactory | None = None


def register(factory: HookFactory | None) -> HookFactory | None:
    """Sets the default hook factory (None: no default hook); returns the previous one."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def default_hook(registry: Any = None) -> Any:
    """The registered factory's hook for `registry`, or None when nothing is registered."""
    return _factory(registry) if _factory is not None else None


def install(model: Any, registry: Any = None) -> Any:
    """Gives a model that serves sessions and has no `adapter_hook` the default hook for `registry`;
    a hook the model already has is kept, other models are left as they are. Returns `model`."""
    from mmagent.protocol.chat import ServesSessions

    if isinstance(model, ServesSessions) and model.adapter_hook is None:
        hook = default_hook(registry)
        if hook is not None:
            model.adapter_hook = hook
    return model
