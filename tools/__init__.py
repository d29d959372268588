"""Typed tools: the Tool base, the @tool decorator, the registry, the artifact store and the built-in tools."""
