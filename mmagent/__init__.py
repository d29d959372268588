"""mmagent: an agentic multimodal tool-use framework.

The core MM-LLM (modality encoder -> input projector -> LLM backbone), typed tools
(`mmagent.tools`), a FAISS multimodal memory (`mmagent.memory`), the LangGraph agent, the CLI
(`mmagent.cli`) and the training recipes (`mmagent.recipes`) share this one namespace.
"""

__version__ = "0.1.0"

# The public API, imported lazily so that `import mmagent` stays light (no torch, no langgraph).
_LAZY = {"Agent": "mmagent.agent.api", "RunResult": "mmagent.agent.api", "tool": "mmagent.tools.base",
         "SchemaTool": "mmagent.tools.schema_tool"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmagent' has no attribute {name!r}")
