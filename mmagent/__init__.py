"""mmagent: an agentic multimodal tool-use framework.

The core MM-LLM (modality encoder -> input projector -> LLM backbone), typed tools
(`mmagent.tools`), a FAISS multimodal memory (`mmagent.memory`), the LangGraph agent, the CLI
(`mmagent.cli`) and the training recipes (`mmagent.recipes`) share this one namespace.
"""

# standard library only: `import mmagent` stays light
from mmagent.protocol import adapter_hook as _adapter_hook

__version__ = "0.1.0"


def _promoted_adapter(registry=None):
    """The learning loop's adapter hook (the version `mmagent learn` promoted in `registry`),
    imported when a session first asks for it."""
    from mmagent.continual.serving import PromotedAdapter

    return PromotedAdapter(registry)


# The entry layer's one piece of wiring: a model that serves sessions and has no adapter hook gets
# this one (`mmagent.protocol.adapter_hook`); the agent and the backends know no learning loop.
_adapter_hook.register(_promoted_adapter)

# The public API, imported lazily so that `import mmagent` stays light (no torch, no langgraph).
_LAZY = {"Agent": "mmagent.agent.api", "RunResult": "mmagent.agent.api", "tool": "mmagent.tools.base",
         "SchemaTool": "mmagent.tools.schema_tool"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmagent' has no attribute {name!r}")
