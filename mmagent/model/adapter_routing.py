"""Which of an MM-LLM folder's LoRA adapters serves a reply, by the tools the reply is offered.

A folder can ship an adapter per kind of work: the default's `tools` is tuned on the built-in tools
(its chains, images, memory), its `open-world` on thousands of generated tools of other domains
(`recipes/open_world_mix.py`). Tuning one adapter on both made it forget built-in chains (unseen
combinations 84 -> 76, the README's open-world section), so each skill keeps its own adapter and a
rule picks one per reply: a reply offered any tool outside `tuned_tools` is served by `open_world`,
every other reply by the adapter the session serves (the shipped one or a promoted version). It is a
mixture of LoRA experts with a rule for its router (cf. LoRAHub / MoLE), chosen because the rule is
exact here: the offered tools are known before the first token.

    "routing": {"tuned_tools": ["classify_image", ...], "open_world": "open-world", "chat": "base"}   # mmllm_config.json

With `chat: "base"`, a plain chat reply (no tools in play) is served by the base LLM without an adapter:
answered as before any tool tuning (the survey's negative transfer, measured by recipes/transfer_eval.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from mmagent.protocol.toolcall import function_of


class AdapterRouting(BaseModel):
    """The rule of the module docstring, as a folder's `mmllm_config.json` holds it."""

    tuned_tools: list[str] = Field(description="the tools the serving adapter was tuned on (the default's: the built-ins)")
    open_world: str = Field(min_length=1, description="the adapter for a reply offered any other tool")
    # "base": a plain chat reply (`tools=None`: no tool in play; tool retrieval's chat router gives general
    # questions that) is the base LLM's, which the tool tuning made decline some of them (negative transfer).
    # `tools=[]` (tools exist, none fits) stays the serving adapter's: it declines what no tool serves, where
    # the base would make an answer up ("the weather in Berlin is 20 degrees").
    chat: Literal["serving", "base"] = Field(default="serving", description="who serves a plain chat reply (tools=None)")

    def serves_base(self, tools: Sequence[dict[str, Any]] | None) -> bool:
        """Whether a reply offered `tools` is the base LLM's (no adapter): chat routed to the base, no tool in play."""
        return self.chat == "base" and tools is None

    def adapter_for(self, tools: Sequence[dict[str, Any]] | None, serving: str | None) -> str | None:
        """`open_world` when `tools` (OpenAI or MCP schemas) hold a tool outside `tuned_tools`, else `serving`."""
        tuned = set(self.tuned_tools)
        return self.open_world if any(function_of(t)["name"] not in tuned for t in tools or ()) else serving
