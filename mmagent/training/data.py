"""Training conversations: loaded from a data folder (or made by a generator), shortened, encoded.

The generator of the built-in instruction data is a recipe (`recipes/data.py`); the library takes
it as a function (`generate`), so it never imports the recipes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmagent.protocol.chat import Message
from mmagent.training.config import ToolTuningConfig
from mmagent.training.sequences import Encoded, encode, system_prefix

if TYPE_CHECKING:
    from mmagent.training.backbone import Backbone

# (split, n, seed) -> examples with `.messages` and `.images` (each with `.image`): recipes.data.generate
Generator = Callable[[str, int, int], Sequence[Any]]


@dataclass
class Conversation:
    messages: list[Message]
    images: dict[str, Any]  # artifact id -> PIL image
    # Its own tool schemas (open-world data: `recipes/open_world.py`, a record's "tools"); None: the
    # built-in registry's, shared by every conversation.
    tools: list[dict[str, Any]] | None = None
    whole: bool = False  # never shortened (a record's "whole": its last turns are what it teaches)


def load_conversations(cfg: ToolTuningConfig, split: str, n: int, generate: Generator | None = None) -> list[Conversation]:
    """Conversations of a split: from `data.dir` if set, else made in memory by `generate` from the seed."""
    if cfg.data.dir is not None:
        from PIL import Image

        root = Path(cfg.data.dir)
        path = root / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: generate it with `python -m mmagent.recipes.data --out {root}` or set data.dir=null")
        out = []
        for line in path.read_text().splitlines()[:n]:
            rec = json.loads(line)
            images = {f"image_{j}": Image.open(root / rel).convert("RGB") for j, rel in enumerate(rec["images"], start=1)}
            tools = rec.get("tools")
            if tools is not None and not tools:
                raise ValueError(f"{path}: record {rec.get('id')} has an empty tools list: leave 'tools' out for the built-in tools")
            out.append(Conversation([Message.model_validate(m) for m in rec["messages"]], images, tools, bool(rec.get("whole"))))
        return [shorten(c, cfg.data.full_fraction, random.Random(f"{cfg.data.seed}/{split}/{i}")) for i, c in enumerate(out)]
    if generate is None:
        raise ValueError("data.dir is not set and no generator was given (the recipes pass recipes.data.generate)")
    convs = [Conversation(ex.messages, {f"image_{j}": d.image for j, d in enumerate(ex.images, start=1)}, getattr(ex, "tools", None))
             for ex in generate(split, n, cfg.data.seed)]
    return [shorten(c, cfg.data.full_fraction, random.Random(f"{cfg.data.seed}/{split}/{i}")) for i, c in enumerate(convs)]


def shorten(c: Conversation, full_fraction: float, rng: random.Random) -> Conversation:
    """Ends a tool-using conversation at its last call turn, unless drawn to stay whole."""
    last_call = max((i for i, m in enumerate(c.messages) if m.role == "assistant" and m.tool_calls), default=None)
    if last_call is None or rng.random() < full_fraction or c.whole:
        return c
    return Conversation(c.messages[: last_call + 1], c.images, c.tools)


def tool_schemas() -> list[dict[str, Any]]:
    """The built-in registry's tool schemas: what conversations without their own tools are rendered with."""
    from mmagent.tools.registry import default_registry

    return default_registry().schemas()


@dataclass
class Sample:
    """An encoded conversation and its images in placeholder order.

    `head`: the token ids of its own system turn when it brings its own tools (`enc` follows it);
    None: the shared prefix of the run's built-in tools."""

    enc: Encoded
    images: list[Any] = field(default_factory=list)
    head: list[int] | None = None

    @property
    def ids(self) -> list[int]:
        return self.enc.ids


def encode_all(bb: Backbone, convs: list[Conversation], tools: list[dict[str, Any]], prefix: list[int]) -> list[Sample]:
    """Token ids + labels after the shared prefix; MM runs render through `MMLLM.build_inputs` (as serving does).

    A conversation with its own tools is rendered with them (its system turn lists them, as at
    serving) and keeps that turn's ids as its `head`."""
    heads: dict[str, list[int]] = {}
    out = []
    for c in convs:
        own, head = tools, prefix
        if c.tools is not None:
            own = c.tools
            key = json.dumps(c.tools, sort_keys=True)
            if key not in heads:
                heads[key] = system_prefix(bb.tok, c.tools)
            head = heads[key]
        if bb.mm is None:
            s = Sample(encode(bb.tok, c.messages, own, head))
        else:
            inp = bb.mm.build_inputs(c.messages, own, artifacts=c.images)
            ids, labels = inp.input_ids.tolist(), inp.labels.tolist()
            if ids[: len(head)] != head:
                raise ValueError("conversation does not start with the shared system prefix")
            order = [i for m in c.messages for i in m.images]
            s = Sample(Encoded(ids[len(head):], labels[len(head):]), [c.images[i] for i in order])
        s.head = None if head is prefix else head
        out.append(s)
    return out
