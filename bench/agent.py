"""Agent benchmarks: orchestration overhead per step, and constrained vs free decoding.

    .venv/bin/python bench/agent.py                 # both tables (the decoding part takes minutes)
    .venv/bin/python bench/agent.py --skip-decode   # overhead only (seconds)

1. Orchestration overhead: a scripted model (no generation) and a no-op tool, so that what is
   left is the framework — LangGraph's super-steps, state (de)serialization, the SQLite checkpoint
   after every node, the interaction-log commits, argument validation and the tool thread.
   overhead/step = (turn wall time - time inside model.chat - time inside the tool) / model steps.
   Rows: in-memory checkpointer (LangGraph's floor), SQLite WAL synchronous=NORMAL (the default:
   survives a killed process), SQLite synchronous=FULL (`durable=True`: also survives power loss).
   Target: p50 <= 5 ms with the SQLite checkpointer on.

2. Constrained vs free decoding on the embedded model (`mmagent-default`: SmolLM2-135M-Instruct,
   not tool-tuned yet) over the built-in tool schemas: how many replies hold a call, how many
   calls parse and validate against the tools' input models, and tokens/s. `required` forces a
   call (grammar mode "required") to show the guarantee on a model that never calls on its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# -- 1. orchestration overhead ---------------------------------------------------------------------


def overhead(turns: int, steps: int) -> None:
    from mmagent.agent import Agent, ScriptedChatModel
    from mmagent.tools import tool
    from mmagent.toolcall import format_calls
    from mmagent.chat import ToolCall

    tool_s: list[float] = []

    @tool
    def noop(x: int) -> int:
        """Returns its argument.

        Args:
            x: Any integer.
        """
        t0 = time.perf_counter()
        tool_s.append(time.perf_counter() - t0)
        return x

    class TimedModel(ScriptedChatModel):
        def __init__(self, outputs):
            super().__init__(outputs)
            self.chat_s = 0.0

        def chat(self, *a, **kw):
            t0 = time.perf_counter()
            try:
                return super().chat(*a, **kw)
            finally:
                self.chat_s += time.perf_counter() - t0

    script = [format_calls([ToolCall(name="noop", arguments={"x": i})]) for i in range(steps - 1)] + ["done"]
    rows = []
    for label, ckpt, durable in [("in-memory checkpointer", ":memory:", False),
                                 ("SQLite WAL, synchronous=NORMAL (default)", "file", False),
                                 ("SQLite WAL, synchronous=FULL (durable=True)", "file", True)]:
        root = Path(tempfile.mkdtemp(prefix="mmagent-bench-"))
        model = TimedModel(script * (turns + 2))
        agent = Agent(model=model, tools=[noop], log=root / "log.sqlite", max_steps=steps + 1, durable=durable,
                      checkpoint=":memory:" if ckpt == ":memory:" else root / "ckpt.sqlite", artifacts_root=root / "art")
        per_step = []
        for i in range(turns + 2):
            tool_s.clear()
            model.chat_s = 0.0
            t0 = time.perf_counter()
            r = agent.run(f"turn {i}", session=f"bench-{i}")
            wall = time.perf_counter() - t0
            assert r.status == "ok" and len(r.calls) == steps - 1, r
            if i >= 2:  # two warm-up turns (imports, first SQLite pages)
                per_step.append((wall - model.chat_s - sum(tool_s)) / steps * 1e3)
        agent.close()
        rows.append((label, statistics.median(per_step), _pct(per_step, 0.9)))
    print(f"\n## Orchestration overhead per model step ({turns} turns x {steps} steps; torch threads n/a, "
          f"1 process, tool pool up to 4 threads)\n")
    print("| checkpointer | p50 ms/step | p90 ms/step |")
    print("|---|---:|---:|")
    for label, p50, p90 in rows:
        print(f"| {label} | {p50:.2f} | {p90:.2f} |")
    ok = rows[1][1] <= 5.0
    print(f"\ntarget p50 <= 5 ms with the SQLite checkpointer: {'met' if ok else 'NOT met'} ({rows[1][1]:.2f} ms)")


# -- 2. constrained vs free decoding ---------------------------------------------------------------

PROMPTS = [
    ("What does the sign in this image say?", ["image_1"]),
    ("Find the faces in this photo.", ["image_1"]),
    ("Make this picture 100 pixels wide.", ["image_1"]),
    ("Generate an image of a red bicycle.", []),
]


def decode(max_new_tokens: int) -> None:
    import torch
    from PIL import Image

    from mmagent.backends import load_chat_model
    from mmagent.chat import Message
    from mmagent.constrained import tool_call_processor
    from mmagent.generation import SamplingConfig
    from mmagent.toolcall import parse_tool_calls
    from mmagent.tools.artifacts import ArtifactStore
    from mmagent.tools.registry import default_registry

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = load_chat_model("mmagent-default")
    load_s = time.perf_counter() - t0
    registry = default_registry()
    tools = registry.schemas()
    store = ArtifactStore(tempfile.mkdtemp(prefix="mmagent-bench-art-"), "bench")
    store.add_image(Image.new("RGB", (96, 64), "white"))
    system = Message(role="system", content="You are a helpful assistant that calls tools.")

    def required(messages):
        """The composed model's own decode loop with the grammar in 'required' mode."""
        m = model.model
        inputs = m.build_inputs(messages, tools, artifacts=store, add_generation_prompt=True, reserve_tokens=max_new_tokens)
        proc = tool_call_processor(m.tokenizer, tools, mode="required", eos_token_ids=m.eos_token_ids)
        out = m.generate(m.collate([inputs]), sampling=SamplingConfig(max_new_tokens=max_new_tokens), processors=[proc])
        return m.tokenizer.decode(out.tokens[0], skip_special_tokens=True), len(out.tokens[0])

    rows = []
    for mode in ("free", "constrained (auto)", "constrained (required)"):
        replies_with_call = calls = parsed = valid = tokens = 0
        secs = 0.0
        for prompt, images in PROMPTS:
            msgs = [system, Message(role="user", content=prompt, images=images)]
            t0 = time.perf_counter()
            if mode == "constrained (required)":
                text, n = required(msgs)
            else:
                r = model.chat(msgs, tools, artifacts=store, max_new_tokens=max_new_tokens, constrained=mode != "free")
                text, n = r.text, r.completion_tokens
            secs += time.perf_counter() - t0
            tokens += n
            got, errors, _ = parse_tool_calls(text)
            replies_with_call += bool(got or errors)
            calls += len(got) + len(errors)
            parsed += len(got)
            for c in got:
                if c.name in registry:
                    try:
                        registry.get(c.name).input_model.model_validate(c.arguments)
                        valid += 1
                    except Exception:  # noqa: BLE001 - counted as invalid
                        pass
        rows.append((mode, replies_with_call, calls, parsed, valid, tokens / secs))
    print(f"\n## Constrained vs free decoding: mmagent-default (SmolLM2-135M, untuned), {len(PROMPTS)} prompts, "
          f"greedy, max {max_new_tokens} new tokens, {len(tools)} tools, torch threads {torch.get_num_threads()}; "
          f"model load {load_s:.1f} s\n")
    print("| decoding | replies with a call | call blocks | parsed | valid (schema) | tokens/s (incl. prefill) |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, with_call, n, p, v, tps in rows:
        rate = lambda k: f"{k}/{n}" + (f" ({100 * k / n:.0f}%)" if n else "")  # noqa: E731
        print(f"| {mode} | {with_call}/{len(PROMPTS)} | {n} | {rate(p)} | {rate(v)} | {tps:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--steps", type=int, default=5, help="model steps per turn (steps-1 tool calls, then an answer)")
    ap.add_argument("--skip-decode", action="store_true", help="skip the embedded-model decoding table")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    overhead(args.turns, args.steps)
    if not args.skip_decode:
        decode(args.max_new_tokens)


if __name__ == "__main__":
    main()
