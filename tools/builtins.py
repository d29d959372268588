"""The built-in tool set. Names are public: read_text, detect_faces, detect_objects, classify_image,
generate_image, crop_image, resize_image, draw_boxes, transcribe_audio, remember, search_memory,
and the opt-in speak. Constructing them loads nothing; each loads its model on its first call."""

from __future__ import annotations

import importlib
import importlib.util

from mmagent.config import Settings
from mmagent.tools.base import Tool

BUILTIN_NAMES = [
    "read_text", "detect_faces", "detect_objects", "classify_image", "generate_image",
    "crop_image", "resize_image", "draw_boxes", "transcribe_audio", "remember", "search_memory",
]


def builtin_tools(settings: Settings) -> list[Tool]:
    """Every built-in tool, unloaded. `speak` only when `settings.speak` is on (GPL-3.0 extra)."""
    from mmagent.tools.audio import Speak, TranscribeAudio
    from mmagent.tools.classify import ClassifyImage
    from mmagent.tools.detection import DetectObjects
    from mmagent.tools.edit import EDIT_TOOLS
    from mmagent.tools.faces import DetectFaces
    from mmagent.tools.generate import GenerateImage
    from mmagent.tools.ocr import ReadText

    tools: list[Tool] = [
        ReadText(), DetectFaces(), DetectObjects(settings.detector), ClassifyImage(), GenerateImage(settings.generator),
        *EDIT_TOOLS, TranscribeAudio(), *memory_tools(),
    ]
    if settings.speak:
        tools.append(Speak(settings.speak_voice))
    return tools


def memory_tools() -> list[Tool]:
    """remember / search_memory from `mmagent.tools.memory_tools` (the memory area writes them)."""
    if importlib.util.find_spec("mmagent.tools.memory_tools") is None:
        return []
    module = importlib.import_module("mmagent.tools.memory_tools")
    return [getattr(module, n) for n in ("remember", "search_memory") if isinstance(getattr(module, n, None), Tool)]
