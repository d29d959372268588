"""Shared fakes for the continual-learning tests: a two-tool registry and an in-memory turn log."""

from __future__ import annotations

from mmagent.continual.scenario import convert_currency  # the custom tool the embedded scenario teaches
from mmagent.feedback import LoggedTurn
from mmagent.tools.base import ImageId, tool
from mmagent.tools.registry import ToolRegistry


@tool
def read_text(image: ImageId) -> str:
    """Reads the text in an image.

    Args:
        image: The image to read.
    """
    return ""


@tool
def detect_faces(image: ImageId, min_size: int = 20) -> int:
    """Finds faces in an image.

    Args:
        image: The image to look at.
        min_size: Smallest face side in pixels.
    """
    return 0


def registry() -> ToolRegistry:
    return ToolRegistry([read_text, detect_faces, convert_currency])


class FakeLog:
    """Turns by id, as the interaction log would return them."""

    def __init__(self, turns: list[LoggedTurn] = ()):
        self.turns = {t.id: t for t in turns}

    def add(self, turn: LoggedTurn) -> LoggedTurn:
        self.turns[turn.id] = turn
        return turn

    def get_turn(self, turn_id: str) -> LoggedTurn | None:
        return self.turns.get(turn_id)
