"""The chat router: a linear probe on the request's MiniLM embedding that tells plain chat from agent work.

    p(agent | request) = sigmoid(w . MiniLM(request) + b)      # w [384]

Below the router's threshold a text-only request is offered no tool (`tool_retrieval.ToolRetriever`),
so it is answered in prose, by the base LLM where the model folder routes chat there
(`mmagent.model.adapter_routing`). Why and how it is trained: `recipes/chat_router.py` (the
generator's data only). The weights are a small JSON file, validated on load (no pickle).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, model_validator

DEFAULT_ROUTER = Path(__file__).resolve().parent.parent / "weights" / "chat-router" / "router.json"


class ChatRouter(BaseModel):
    format: int = 1
    encoder: str = Field(description="the text embedder the probe reads (mmagent.memory.embedders)")
    weights: list[float] = Field(min_length=1)
    bias: float
    threshold: float = Field(ge=0, le=1, description="p(agent) below which a request is plain chat")

    @model_validator(mode="after")
    def _known_format(self) -> ChatRouter:
        if self.format != 1:
            raise ValueError(f"chat router format {self.format} is not supported (this mmagent reads format 1)")
        return self

    @functools.cached_property
    def _w(self) -> np.ndarray:
        return np.asarray(self.weights, np.float32)

    def p_agent(self, vec: np.ndarray) -> float:
        """p(agent) of one unit embedding [D]."""
        if vec.shape != self._w.shape:
            raise ValueError(f"chat router expects {self._w.shape[0]}-dim {self.encoder} embeddings, got shape {vec.shape}")
        return float(1 / (1 + np.exp(-(float(vec @ self._w) + self.bias))))

    def is_chat(self, vec: np.ndarray) -> bool:
        return self.p_agent(vec) < self.threshold


@functools.cache
def load_router(path: Path = DEFAULT_ROUTER) -> ChatRouter:
    try:
        return ChatRouter.model_validate_json(Path(path).read_bytes())
    except (OSError, ValueError) as err:
        raise ValueError(f"chat router {path} is unreadable ({err}); rebuild it with `python -m mmagent.recipes.chat_router`") from err
