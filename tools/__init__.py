"""Typed tools: the Tool base, the @tool decorator, tools from JSON schemas, the registry, the artifact store and the built-in tools."""

from mmagent.tools.base import AudioId, ImageId, TextId, Tool, ToolContext, ToolDefinitionError, ToolInputError, tool
from mmagent.tools.registry import ToolRegistry, ToolResult, default_registry
from mmagent.tools.schema_tool import SchemaTool, ToolSchemaError, load_tool_schemas

from mmagent.media.artifacts import Artifact, ArtifactError, ArtifactStore

__all__ = [
    "Artifact", "ArtifactError", "ArtifactStore", "AudioId", "ImageId", "SchemaTool", "TextId", "Tool", "ToolContext",
    "ToolDefinitionError", "ToolInputError", "ToolRegistry", "ToolResult", "ToolSchemaError", "default_registry",
    "load_tool_schemas", "tool",
]
