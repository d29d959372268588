"""Chat backends behind the one `ChatModel` interface (mmagent.protocol.chat), chosen by a spec string.

    load_chat_model("mmagent-default")            # the embedded composed MM-LLM (catalog kind mmllm)
    load_chat_model("./my-mmllm")                 # a folder saved by MMLLM.save_pretrained
    load_chat_model("vlm:./my-llava")             # a native transformers VLM (catalog kind vlm too)
    load_chat_model("http://127.0.0.1:8000/v1#qwen2-vl")   # an OpenAI-compatible endpoint (or openai:...)

The spec's prefix, the catalog entry's kind or the folder's files pick the backend, never the
model's name. Which adapter a composed model's sessions run with is not decided here: whoever
drives the model installs the registered default hook (`mmagent.protocol.adapter_hook`).
"""

from __future__ import annotations

from pathlib import Path

from mmagent.protocol.chat import ChatModel

DEFAULT = "mmagent-default"


def load_chat_model(spec: str = DEFAULT, settings=None) -> ChatModel:
    """A spec string -> a ready `ChatModel` (see the module docstring for the forms)."""
    from mmagent.hub.catalog import CATALOG

    if spec.startswith(("openai:", "http://", "https://")):
        from mmagent.backends.remote import RemoteChatModel

        return RemoteChatModel.from_spec(spec)
    if spec.startswith("vlm:"):
        return _vlm(spec.removeprefix("vlm:"), settings)
    if spec in CATALOG.names():
        entry = CATALOG.get(spec)
        if entry.kind == "vlm":
            return _vlm(spec, settings)
        if entry.kind != "mmllm":
            raise ValueError(f"{spec!r} is a {entry.kind} model, not a chat model; chat models: {', '.join(_chat_names())}")
        return _composed(Path(entry.source.path), spec, settings)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        from mmagent.model.mmllm import CONFIG_FILE

        return _composed(folder, spec, settings) if (folder / CONFIG_FILE).is_file() else _vlm(spec, settings)
    raise ValueError(
        f"cannot load chat model {spec!r}: not a catalog chat model ({', '.join(_chat_names())}), not a folder, "
        "not vlm:<path|hub id>, not an http(s)://.../v1#model endpoint"
    )


def _chat_names() -> list[str]:
    from mmagent.hub.catalog import CATALOG

    return [e.name for e in CATALOG.entries() if e.kind in ("mmllm", "vlm")]


def _composed(folder: Path, name: str, settings) -> ChatModel:
    from mmagent.backends.composed import ComposedChatModel
    from mmagent.config import get_settings, torch_dtype

    s = settings or get_settings()
    dtype = torch_dtype(s) if s.dtype != "float32" else None  # float32 is the default: the model's config decides
    return ComposedChatModel.from_pretrained(folder, name, settings, dtype=dtype)


def _vlm(spec: str, settings) -> ChatModel:
    from mmagent.backends.vlm import VLMChatModel

    return VLMChatModel.from_pretrained(spec, settings=settings)


__all__ = ["DEFAULT", "load_chat_model"]
