"""remember / search_memory: the agent's long-term multimodal memory as two tools.

The store comes from `ToolContext.memory` (a `mmagent.memory.store.MemoryStore`); media come in
as artifact ids and are loaded through `ctx.artifacts`. Audio is remembered by its transcript
(the `transcribe_audio` tool), images through the store's embedder (the image bridge by default).

Scope: both tools read and write one namespace, never another's: the store's own when it was
opened scoped (`MemoryStore(path, namespace="alice")`: every session given that store shares
alice's memories; `namespace="default"` shares what `mmagent memory add` stored), otherwise the
session's (`ToolContext.session`). Widening is the operator's choice when opening the store, not
an argument the model can set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mmagent.tools.base import AudioId, ImageId, ToolContext, tool


class RememberOutput(BaseModel):
    id: int = Field(description="Id of the stored memory.")
    modality: Literal["text", "image", "audio"]
    text: str = Field(description="The text stored with it (for an image: caption, text read in it, what it looks like).")


class MemoryHitOut(BaseModel):
    id: int
    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    modality: Literal["text", "image", "audio"]
    text: str
    artifact_id: str | None = Field(None, description="The remembered image or audio, if it came from an artifact.")
    tags: list[str]
    session: str | None
    created_at: str


class SearchMemoryOutput(BaseModel):
    hits: list[MemoryHitOut] = Field(description="Best match first.")


def _store(ctx: ToolContext):
    store = ctx.memory_store()
    if store is None:
        raise RuntimeError("no memory store is attached to this session (ToolContext.memory is None); open one with mmagent.memory.store.MemoryStore")
    return store


def namespace_of(ctx: ToolContext, store) -> str:
    """The one namespace these tools touch: a scoped store's, else the session's."""
    return getattr(store, "namespace", None) or ctx.session


@tool
def remember(
    ctx: ToolContext,
    text: str | None = None,
    image: ImageId | None = None,
    audio: AudioId | None = None,
    tags: list[str] | None = None,
) -> RememberOutput:
    """Stores text, an image or an audio clip in long-term memory so that search_memory can find it later.

    Args:
        text: Text to remember; with an image, its caption.
        image: Id of an image to remember.
        audio: Id of an audio clip to remember (stored by its transcript).
        tags: Labels to filter by later.
    """
    store = _store(ctx)
    if image and audio:
        raise ValueError("remember one thing at a time: give either image or audio, not both")
    kw = {"tags": tags or [], "session": ctx.session, "source": "agent", "namespace": namespace_of(ctx, store)}
    if image:
        item = store.add_image(ctx.artifacts.load_image(image), caption=text, artifact_id=image, **kw)
    elif audio:
        transcript = text or _transcribe(audio, ctx)
        item = store.add_audio(transcript=transcript, artifact_id=audio, **kw)
    elif text and text.strip():
        item = store.add_text(text, **kw)
    else:
        raise ValueError("nothing to remember: give text, an image id or an audio id")
    return RememberOutput(id=item.id, modality=item.modality, text=item.text)


@tool
def search_memory(
    ctx: ToolContext,
    query: str | None = None,
    image: ImageId | None = None,
    k: Annotated[int, Field(ge=1, le=50)] = 5,
    modality: Literal["text", "image", "audio"] | None = None,
    tags: list[str] | None = None,
) -> SearchMemoryOutput:
    """Finds remembered text, images and audio most similar to a text query or to an image.

    Args:
        query: What to look for, in words.
        image: Id of an image to find similar memories to (instead of a text query).
        k: How many memories to return.
        modality: Only memories of this kind.
        tags: Only memories with at least one of these tags.
    """
    store = _store(ctx)
    if (query is None or not query.strip()) == (image is None):
        raise ValueError("give exactly one of query (text) or image (an image id) to search by")
    filters = {k_: v for k_, v in (("modality", modality), ("tags_any", tags)) if v}
    filters["namespace"] = namespace_of(ctx, store)  # never another session's (or user's) memories
    q = ctx.artifacts.load_image(image) if image else query
    hits = store.search(q, k=k, filters=filters)
    return SearchMemoryOutput(hits=[
        MemoryHitOut(id=h.id, score=round(h.score, 4), modality=h.modality, text=h.text, artifact_id=h.artifact_id,
                     tags=h.tags, session=h.session, created_at=h.created_at.isoformat(timespec="seconds"))
        for h in hits
    ])


@lru_cache(maxsize=1)
def _asr():
    from mmagent.tools.audio import TranscribeAudio

    return TranscribeAudio()  # loads its decoder once, on first use


def _transcribe(audio: str, ctx: ToolContext) -> str:
    asr = _asr()
    out = asr.invoke(asr.input_model(audio=audio), ctx)
    if not out.text.strip():
        raise ValueError(f"no speech was recognized in {audio}: pass text=... with what it says to remember it")
    return out.text
