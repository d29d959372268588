"""Typed tools: the Tool base, the @tool decorator, the registry, the artifact store and the built-in tools."""

from mmagent.tools.artifacts import Artifact, ArtifactError, ArtifactStore
from mmagent.tools.base import AudioId, ImageId, TextId, Tool, ToolContext, ToolDefinitionError, ToolInputError, tool
from mmagent.tools.registry import ToolRegistry, ToolResult, default_registry

__all__ = [
    "Artifact", "ArtifactError", "ArtifactStore", "AudioId", "ImageId", "TextId", "Tool", "ToolContext",
    "ToolDefinitionError", "ToolInputError", "ToolRegistry", "ToolResult", "default_registry", "tool",
]
