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


def lora_folder(d, tag: str | int = 0, r: int = 2):
    """A small LoRA folder that loads (the registry loads a version before promoting it): a peft
    LoRA config (with `tag`) and random A/B tensors for one q_proj, seeded by the tag."""
    import json
    import zlib
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    d = Path(d)
    d.mkdir(parents=True)
    g = torch.Generator().manual_seed(zlib.crc32(str(tag).encode()))
    key = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{key}.lora_A.weight": torch.randn(r, 8, generator=g), f"{key}.lora_B.weight": torch.randn(8, r, generator=g)},
              str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj"],
                                                       "task_type": "CAUSAL_LM", "tag": tag}))
    return d
