"""The built-in suites as an agent with a custom tool serves them: the user's tool is offered beside the
built-ins, and tool retrieval (mmagent/backends/tool_retrieval.py) decides what each reply sees, so
which adapter serves it (mmagent/model/adapter_routing.py: any of the user's tools offered -> open-world).
Compares, on the same model in one process, a media turn passed through whole (every tool offered: the
reply is the open-world adapter's) with one whose user tools must fit the request (`filter_media_turns`).

    .venv/bin/python bench/agent_case.py [--suites unseen-combinations unseen-phrasings] [--limit N] [--threads 1]

Prints strict success (recipes/eval.py) per suite and setting, and how many replies with an image were
offered the user's tool. The custom tool is bench/learn.py's convert_currency.
"""

from __future__ import annotations

import argparse


def _counting():
    from mmagent.backends.tool_retrieval import RetrievingChatModel

    class Counting(RetrievingChatModel):
        """Retrieval that notes, for each reply with an image, whether the user's tool was offered."""

        def offered(self, messages, tools, constrained=None):
            out = super().offered(messages, tools, constrained)
            if any(m.images for m in messages if m.role == "user"):
                self.image_replies.append(any(t["function"]["name"] == "convert_currency" for t in out or []))
            return out

    return Counting


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suites", nargs="*", default=["unseen-combinations", "unseen-phrasings"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch

    from mmagent.backends import load_chat_model
    from mmagent.backends.tool_retrieval import ToolRetrieval, ToolRetriever
    from mmagent.continual.scenario import convert_currency
    from mmagent.recipes.eval import evaluate
    from mmagent.tools.registry import default_registry
    from mmagent.training.scoring import shipped_suites

    torch.set_num_threads(a.threads)
    tools = [*default_registry().schemas(), convert_currency.schema()]
    chat = load_chat_model("mmagent-default")
    Counting = _counting()
    print(f"mmagent-default, constrained, {a.threads} thread(s); tools: the 11 built-ins + convert_currency\n")
    print("| suite | media turns | strict % | image replies offered convert_currency |\n|---|---|---|---|")
    for name in a.suites:
        for filtered in (False, True):
            model = Counting(chat, ToolRetriever(ToolRetrieval(filter_media_turns=filtered)))
            object.__setattr__(model, "image_replies", [])  # the proxy forwards attribute writes to the model it wraps
            rep = evaluate(model, shipped_suites() / f"{name}.jsonl", tools, constrained=True, limit=a.limit)
            print(f"| {name} | {'filtered' if filtered else 'passed through'} | {100 * rep.metrics.strict_success:.1f} | "
                  f"{sum(model.image_replies)} of {len(model.image_replies)} |", flush=True)


if __name__ == "__main__":
    main()
