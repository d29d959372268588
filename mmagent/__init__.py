"""mmagent: an agentic multimodal tool-use framework.

The core MM-LLM (modality encoder -> input projector -> LLM backbone), typed tools
(`mmagent.tools`), a FAISS multimodal memory (`mmagent.memory`), the LangGraph agent, the CLI
(`mmagent.cli`) and the training recipes (`mmagent.recipes`) share this one namespace.
"""

__version__ = "0.1.0"
