# Launch: .venv/bin/python -m mmagent.recipes.transfer_eval recipes/suites/heldout-general.jsonl --out runs/transfer.json
"""Negative transfer: does tool tuning make the model worse at what it could already answer?

The survey's term for a fine-tune that costs general ability. On general questions that need no
tool (facts, arithmetic, greetings, translation, short writing) the tuned model, as users meet it
(every built-in tool offered, schema-guided decoding), is scored beside its base LLM without the
adapter and without tools (a plain chat), and beside the tuned model without tools. Per setting:

- correct: over items with `answers`, the reply contains one of them (case-insensitive, as a word);
- declined: the reply refuses ("I'm not able to ...", "with the tools I have"...);
- called: the reply called a tool (no item here needs one).

The bar (the open-world issue): tuned-with-tools correct >= base correct, declined + called <= 2%.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from mmagent.recipes.eval import SuiteItem, load_suite
from pydantic import BaseModel

from mmagent.protocol.chat import ChatModel, Message

DECLINES = re.compile(r"\b(i'?m not able|i am not able|i can(?:no|')t|i'?m unable|unable to|not possible with|"
                      r"with the tools i have|i don'?t have (?:a|the|any) tool|no tool)", re.IGNORECASE)


class TransferScore(BaseModel):
    setting: str
    n: int
    n_with_answers: int
    correct: float
    declined: float
    called: float


def is_correct(reply: str, answers: list[str]) -> bool:
    text = reply.lower()
    return any(re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", text) for a in answers)


def score(model: ChatModel, items: list[SuiteItem], setting: str, tools: list[dict[str, Any]] | None,
          system: str, max_new_tokens: int = 48) -> TransferScore:
    correct = declined = called = 0
    graded = [it for it in items if it.answers]
    for it in items:
        msgs = [Message(role="system", content=system)] if system else []
        res = model.chat([*msgs, Message(role="user", content=it.prompt)], tools, max_new_tokens=max_new_tokens,
                         constrained=bool(tools))
        called += bool(res.tool_calls)
        declined += bool(not res.tool_calls and DECLINES.search(res.text))
        correct += bool(it.answers and not res.tool_calls and is_correct(res.text, it.answers))
    n = len(items)
    return TransferScore(setting=setting, n=n, n_with_answers=len(graded), correct=correct / max(len(graded), 1),
                         declined=declined / n, called=called / n)


def run(suite: Path, limit: int | None = None, model_spec: str = "mmagent-default") -> list[TransferScore]:
    """The three settings on a composed model (one loaded model, adapters switched)."""
    # the tuned adapter "without tools" is no setting of its own: a folder whose routing says `chat: base`
    # serves every reply offered no tool with the base, which the third setting scores
    from mmagent.tools.registry import default_registry

    from mmagent.agent.api import DEFAULT_SYSTEM_PROMPT
    from mmagent.backends import load_chat_model
    from mmagent.backends.tool_retrieval import RetrievingChatModel

    items = load_suite(suite)[:limit]
    model = load_chat_model(model_spec)
    tuned = model.model.active_adapter
    tools = default_registry().schemas()
    routing = model.model.config.routing
    chat = f", chat routed to {'the base' if routing is not None and routing.chat == 'base' else tuned}"
    out = [score(RetrievingChatModel(model), items, f"as served: tool retrieval + chat router{chat}, constrained", tools,
                 DEFAULT_SYSTEM_PROMPT),
           score(model, items, f"tuned ({tuned}), every tool offered, constrained", tools, DEFAULT_SYSTEM_PROMPT)]
    model.model.set_adapter(None)
    out.append(score(model, items, "base SmolLM2-135M-Instruct, no adapter, no tools", None, ""))
    model.model.set_adapter(tuned)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("suite", type=Path)
    p.add_argument("--limit", type=int)
    p.add_argument("--model", default="mmagent-default", help="a composed model: catalog name or folder")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    scores = run(args.suite, args.limit, args.model)
    print(f"{'setting':58} {'correct':>8} {'declined':>9} {'called':>7}")
    for s in scores:
        print(f"{s.setting:58} {s.correct:8.1%} {s.declined:9.1%} {s.called:7.1%}  (n={s.n}, graded {s.n_with_answers})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([s.model_dump() for s in scores], indent=2))


if __name__ == "__main__":
    main()
