"""The built-in tool set (public names): which tools exist and how settings configure them."""

from __future__ import annotations

import importlib.util
import logging

from mmagent.config import Settings
from mmagent.tools.base import Tool

log = logging.getLogger(__name__)


def builtin_tools(settings: Settings) -> list[Tool]:
    """Every built-in tool, unloaded (models load on first call). `speak` only if `settings.speak`."""
    from mmagent.tools.edit import EDIT_TOOLS

    tools: list[Tool] = [*EDIT_TOOLS]
    return tools
