"""Tool retrieval: before the model replies, offer it only the tools whose description fits the request.

Why: the shipped 135M model is tool-tuned on the built-ins. Given tools it never saw, it nearly always
calls one, also when none serves the request, and it often picks the wrong one of several. A
sentence encoder is much better at that matching than the 135M model: on the open-world generator's
held-out families, the embedded MiniLM (already shipped for memory) ranks the expected tool first
on 96% of items and separates "no offered tool fits" from the rest with ROC AUC 0.93 (0.89 on the
blind open-world suite), where the model's own probability of opening a call reaches 0.67.
Retrieval in front of the caller is what large tool libraries do too (ToolLLM's API retriever,
Qin et al. 2023, arXiv 2307.16789; Gorilla's retriever-aware training, Patil et al. 2023).

    relevance(tool) = cos(MiniLM(request), MiniLM("<name in words>: <description>"))
    offered = {tool : relevance >= min_score and relevance >= best - margin}

When none fits, the model is offered no tool (`tools=[]`): under constrained decoding it then answers
in prose only (the grammar without tools forbids opening a call, OpenAI's `tool_choice: "none"`).

Only tools the model was not tuned on are filtered (`known`: the built-ins by default): its own
tools it already knows, and their requests are often about an attached image, which a text encoder
cannot see ("am I allowed to park here?" about a sign). On a turn that attaches media the known tools
are always offered for the same reason, and so are the user's tools that take media (a parameter named
like image / photo / audio / file: they may act on what the text does not describe); the user's other
tools must fit the request. Passing such a turn through whole sent every image request of an agent with
any custom tool to the open-world adapter (`mmagent.model.adapter_routing`): with `convert_currency`
registered, unseen combinations scored 76 instead of the built-in adapter's 84. Once one of the user's
tools fits a text-only turn, the known tools must fit too (`focus`): that reply is the open-world
adapter's, tuned on the user's kind of tool sets. With `constrained="required"` (the caller demands a call) the best
tool is always kept.

Cosines cannot tell a general question from a built-in request (on the generator's data the best
built-in cosine of "remember ..." requests has median 0.17, of general questions 0.15), so a text-only
turn first meets the chat router (`chat_router.py`, a linear probe on the same embedding): plain chat
(facts, arithmetic, greetings, translation, thanks) is offered no tool unless one of the user's tools
fits it, and a folder that routes chat to its base LLM answers it as that LLM would.

The thresholds are calibrated on the generator's training families only (`bench/tool_retrieval.py`
prints the table), the router on the generator's requests (`recipes/chat_router.py`), never on a test suite.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from mmagent.backends.chat_router import ChatRouter, load_router
from mmagent.protocol.chat import ChatModel, ChatModelProxy, ChatResult, Message
from mmagent.protocol.toolcall import function_of
from mmagent.tools.builtins import BUILTIN_NAMES

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> unit rows [N, D]


class ToolRetrieval(BaseModel):
    """Which offered tools the model sees (see the module docstring)."""

    # Calibrated on the generator's training families (seed 1, 800 open-world items: bench/tool_retrieval.py):
    # 0.2 keeps 96% of the requests' expected tools and drops every tool on 46% of the no-tool-fits ones.
    min_score: float = Field(default=0.2, ge=-1, le=1, description="Cosine below which a tool is not offered.")
    # 0.15: the expected tools stay offered on 95% of "pick one of several" requests and 73% of parallel
    # ones while 1.5 of ~3 tools remain (a margin of 1.0 keeps 84% of parallel ones, 1.9 tools).
    margin: float = Field(default=0.15, ge=0, description="Tools more than this below the best one are not offered.")
    known: frozenset[str] = Field(default=frozenset([*BUILTIN_NAMES, "speak"]), description="Always offered: the tools the model was tuned on.")
    # The default's open-world adapter serves a reply once one of the user's tools is offered (mmagent.model.adapter_routing),
    # and it was tuned on tool sets without the built-ins beside them. Chosen on the generator's training families
    # (200 validation items, the built-ins offered beside each item's tools, as the agent does): strict 13.0 -> 33.5.
    focus: bool = Field(default=True, description="When one of the user's tools fits, the known tools are offered only if they fit too.")
    # bench/agent_case.py: the built-in suites with a custom tool registered, media turns passed through vs filtered.
    filter_media_turns: bool = Field(default=True, description="On a turn with an image or audio, the user's tools that take no media must fit too.")
    # The chat router (mmagent/backends/chat_router.py, recipes/chat_router.py): general questions, greetings and thanks
    # are offered no tool, so they are answered in prose (by the base LLM where the folder's routing says `chat: base`).
    chat_route: bool = Field(default=True, description="A text-only request the chat router calls plain chat is offered no tool, "
                             "unless one of the user's tools fits it.")


DEFAULT_RETRIEVAL = ToolRetrieval()


MEDIA_WORDS = frozenset({"image", "images", "img", "photo", "photos", "picture", "pic", "audio", "sound", "voice", "video",
                         "file", "attachment", "artifact"})


def name_words(name: str) -> str:
    """An identifier in words: "get_weather" / "getWeather" / "weather.get" -> "get weather"."""
    return re.sub(r"[._-]+", " ", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)).lower()


def takes_media(tool: dict[str, Any]) -> bool:
    """Whether a tool has a parameter named for media (`image`, `photo_id`, `audioFile`, `image_url`...)."""
    props = (function_of(tool).get("parameters") or {}).get("properties") or {}
    return any(MEDIA_WORDS.intersection(name_words(name).split()) for name in props)


def tool_text(tool: dict[str, Any]) -> str:
    """What a tool is matched on: its name in words and its description."""
    fn = function_of(tool)
    return f"{name_words(fn['name'])}: {fn.get('description') or ''}".strip()


class ToolRetriever:
    """Scores offered tools against a request with a sentence encoder (loaded on first use)."""

    def __init__(self, settings: ToolRetrieval | None = None, embed: Embed | None = None, cache_size: int = 4096,
                 router: ChatRouter | None = None) -> None:
        self.settings = settings or ToolRetrieval()
        self._embed = embed
        # None: the shipped router, loaded on first use; it reads MiniLM embeddings, so beside another
        # embedder (`embed`) only a router given here applies.
        self._router = router
        self._custom_embed = embed is not None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> unit vector; tool texts repeat every step
        self.cache_size = cache_size
        self._lock = threading.Lock()  # the warm-up thread and a turn may embed at once

    def unknown(self, tools: Sequence[dict[str, Any]]) -> list[int]:
        """Indices of the tools retrieval filters: those the model was not tuned on."""
        return [i for i, t in enumerate(tools) if function_of(t)["name"] not in self.settings.known]

    def needed(self, tools: Sequence[dict[str, Any]]) -> bool:
        """Whether any of `tools` would be filtered: then the encoder is warmed up in the background. The chat
        router alone does not warm it: it loads on the first text-only turn, so that a turn about an image (the
        router never runs there) neither imports transformers' modeling stack nor shares the CPU with a load."""
        return bool(self.unknown(tools))

    @property
    def _routes_chat(self) -> bool:
        return self.settings.chat_route and (self._router is not None or not self._custom_embed)

    def is_chat(self, request: str) -> bool:
        """The chat router's verdict on a request (module docstring; `mmagent.backends.chat_router`)."""
        if not self._routes_chat:
            return False
        if self._router is None:
            self._router = load_router()
        return self._router.is_chat(self.embed([request])[0])

    def warm(self, tools: Sequence[dict[str, Any]] = ()) -> threading.Thread:
        """Loads the encoder and embeds `tools` in a background thread (~1-2 s of the first turn's set-up
        otherwise: transformers' imports, the weights), so it overlaps whatever the caller does next."""
        texts = [tool_text(t) for t in tools]
        thread = threading.Thread(target=lambda: self.embed(texts or ["warm-up"]), name="mmagent-tool-retrieval-warmup", daemon=True)
        thread.start()
        return thread

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._embed is None:
                from mmagent.memory.embedders import load_text_embedder

                self._embed = load_text_embedder("minilm-l6").embed_texts
            new = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if new:
                for text, vec in zip(new, self._embed(new)):
                    self._cache[text] = np.asarray(vec, np.float32)
            vecs = np.stack([self._cache[t] for t in texts])
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return vecs

    def scores(self, request: str, tools: Sequence[dict[str, Any]]) -> np.ndarray:
        """Cosine of each tool's text with the request [len(tools)]."""
        vecs = self.embed([request, *map(tool_text, tools)])
        return vecs[1:] @ vecs[0]

    def select(self, request: str, tools: Sequence[dict[str, Any]], keep_one: bool = False, media: bool = False) -> list[dict[str, Any]] | None:
        """The tools offered for `request`, in their given order; `media`: the turn attaches an image or audio
        (see the module docstring). `[]`: none fits (prose; the tuned adapter declines what no tool serves);
        None: plain chat by the chat router, no tool in play (a folder may serve it with its base LLM)."""
        s = self.settings
        unknown = self.unknown(tools)
        if not tools or not request.strip() or (media and not s.filter_media_turns):
            return list(tools)
        chat = not media and not keep_one and self.is_chat(request)
        if not unknown:
            return None if chat else list(tools)
        rel = self.scores(request, [tools[i] for i in unknown])
        best = float(rel.max())
        fits = {i for i, r in zip(unknown, rel) if r >= s.min_score and r >= best - s.margin}
        if chat and not fits:
            return None
        if media:
            fits |= {i for i in unknown if takes_media(tools[i])}
        if keep_one and not fits and len(unknown) == len(tools):
            fits = {unknown[int(rel.argmax())]}
        known = sorted(set(range(len(tools))) - set(unknown))
        if fits and known and s.focus and not media:  # the known tools face the same rule, against the best of all
            krel = self.scores(request, [tools[i] for i in known])
            top = max(best, float(krel.max()))
            fits |= {k for k, r in zip(known, krel) if r >= s.min_score and r >= top - s.margin}
        else:
            fits |= set(known)
        return [t for i, t in enumerate(tools) if i in fits]


def turn_request(messages: Sequence[Message]) -> Message | None:
    """The user message the reply answers: the last one (tool results and earlier steps follow it)."""
    return next((m for m in reversed(messages) if m.role == "user"), None)


class RetrievingChatModel(ChatModelProxy):
    """A `ChatModel` that offers the wrapped model only the tools `ToolRetriever` finds relevant to the
    turn's request; everything else is the wrapped model's."""

    def __init__(self, model: ChatModel, retriever: ToolRetriever | None = None) -> None:
        super().__init__(model)
        object.__setattr__(self, "retriever", retriever or ToolRetriever())

    def chat(self, messages: list[Message], tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> ChatResult:
        return self.inner.chat(messages, self.offered(messages, tools, kwargs.get("constrained")), **kwargs)

    def offered(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None, constrained: Any = None) -> list[dict[str, Any]] | None:
        request = turn_request(messages)
        if not tools or request is None:
            return tools
        return self.retriever.select(request.content, tools, keep_one=constrained == "required",  # [] / None: prose
                                     media=bool(request.images or request.audio))
