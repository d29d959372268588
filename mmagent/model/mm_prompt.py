"""A conversation -> the LLM's chat-template text, its token ids, and labels on assistant turns.

Messages go through `mmagent.protocol.toolcall.template_messages` (tool prompt in the system message, calls
re-rendered in the one tool-call format, media ids named) so that the composed model sees exactly
what the training data contains. Each image adds one placeholder at the start of its message
(unless the text already places them). Labels keep only assistant turns (their text and the
end-of-turn token, so the model learns to stop); everything else is IGNORE (-100).

Assistant spans are found by rendering the conversation prefix before and after each assistant
message: chat templates are prefix-stable (ChatML is), and a template that is not gets a clear
error rather than silently wrong labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmagent.protocol.chat import Message

if TYPE_CHECKING:  # types only: transformers' modeling import costs ~2.5 s (see mmagent.model.lean_tokenizer)
    from transformers import PreTrainedTokenizerBase

IGNORE = -100  # the label value the loss skips (torch's CrossEntropyLoss default); the one definition


class ImageTokenMismatchError(ValueError):
    """The prompt's image placeholders and the images given do not pair up."""


class EmptyPromptError(ValueError):
    pass


@dataclass
class Rendered:
    text: str
    input_ids: list[int]
    labels: list[int]


def render_conversation(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None,
    system: str | None,
    image_token: str,
    add_generation_prompt: bool,
) -> Rendered:
    from mmagent.protocol.toolcall import template_messages

    if not messages or not any(m.content.strip() or m.images or m.tool_calls for m in messages):
        raise _empty()
    msgs = list(messages)
    if system:
        msgs = _with_system(msgs, system)
    dicts = template_messages(msgs, tools)
    offset = len(dicts) - len(msgs)  # template_messages may prepend a system message
    for i, m in enumerate(msgs):
        dicts[i + offset]["content"] = _place_images(dicts[i + offset]["content"], m, i, image_token)
    text = _apply(tokenizer, dicts, add_generation_prompt)
    spans = _assistant_spans(tokenizer, dicts, text)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [t if any(a <= start < b for a, b in spans) else IGNORE for t, (start, _) in zip(ids, enc["offset_mapping"])]
    return Rendered(text, ids, labels)


def _empty() -> ValueError:
    return EmptyPromptError("the prompt is empty: give at least one message with text or an image")


def _with_system(msgs: list[Message], system: str) -> list[Message]:
    if msgs and msgs[0].role == "system":
        first = msgs[0].model_copy(update={"content": f"{system}\n{msgs[0].content}".strip()})
        return [first, *msgs[1:]]
    return [Message(role="system", content=system), *msgs]


def _place_images(content: str, m: Message, index: int, image_token: str) -> str:
    """One placeholder per image at the start of the text, or checks the ones the text has."""
    present = content.count(image_token)
    if present == 0:
        return image_token * len(m.images) + ("\n" if m.images else "") + content
    if present != len(m.images):
        raise ImageTokenMismatchError(
            f"message {index} ({m.role}) writes {image_token} {present} time(s) but carries {len(m.images)} image(s); "
            f"remove the {image_token} markers or attach as many images"
        )
    return content


def _apply(tokenizer: PreTrainedTokenizerBase, dicts: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=add_generation_prompt)


def _assistant_spans(tokenizer: PreTrainedTokenizerBase, dicts: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of each assistant turn's content and end-of-turn marker in `text`."""
    spans = []
    for j, d in enumerate(dicts):
        if d["role"] != "assistant":
            continue
        before = _apply(tokenizer, dicts[:j], True)
        through = _apply(tokenizer, dicts[: j + 1], False)
        if not (text.startswith(through) and through.startswith(before)):
            raise ValueError("the tokenizer's chat template is not prefix-stable; cannot locate assistant turns for labels")
        spans.append((len(before), len(through)))
    return spans
