"""Agent benchmarks: orchestration overhead per step, and constrained vs free decoding.

    .venv/bin/python bench/agent.py                 # both tables (the decoding part takes minutes)
    .venv/bin/python bench/agent.py --skip-decode   # overhead only (seconds)

1. Orchestration overhead: a scripted model (no generation) and a no-op tool, so that what is
   left is the framework — LangGraph's super-steps, state (de)serialization, the SQLite checkpoint
   after every node, the interaction-log commits, argument validation and the tool thread.
   overhead/step = (turn wall time - time inside model.chat - time inside the tool) / model steps.
   Rows: in-memory checkpointer (LangGraph's floor), SQLite WAL synchronous=NORMAL (the default:
   survives a killed process) through `run()` and through `stream()` (events validated and
   consumed), SQLite synchronous=FULL (`durable=True`: also survives power loss).
   Target: p50 <= 5 ms with the SQLite checkpointer on.

2. Constrained vs free decoding on the embedded model (`mmagent-default`: SmolLM2-135M-Instruct,
   not tool-tuned yet) over the built-in tool schemas: how many replies hold a call, how many
   calls parse and validate against the tools' input models, how many were cut off by the token
   budget (the one thing the grammar cannot prevent), tokens/s, and the grammar's own cost per
   token. `auto` is what `constrained=True` does (prose allowed; a call, once opened, is
   constrained); `required` forces a call, to show the guarantee on a model that never calls on
   its own. All three run the composed model's own decode loop, as `ChatModel.chat` does.
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
    from mmagent.tools import tool

    from mmagent.agent import Agent, ScriptedChatModel
    from mmagent.protocol.chat import ToolCall
    from mmagent.protocol.toolcall import format_calls

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
    for label, ckpt, durable, streamed in [("in-memory checkpointer", ":memory:", False, False),
                                           ("SQLite WAL, synchronous=NORMAL (default)", "file", False, False),
                                           ("SQLite WAL, NORMAL, consuming agent.stream() events", "file", False, True),
                                           ("SQLite WAL, synchronous=FULL (durable=True)", "file", True, False)]:
        root = Path(tempfile.mkdtemp(prefix="mmagent-bench-"))
        model = TimedModel(script * (turns + 2))
        agent = Agent(model=model, tools=[noop], log=root / "log.sqlite", max_steps=steps + 1, durable=durable,
                      checkpoint=":memory:" if ckpt == ":memory:" else root / "ckpt.sqlite", artifacts_root=root / "art")
        per_step, cpu_step = [], []
        for i in range(turns + 2):
            tool_s.clear()
            model.chat_s = 0.0
            t0, c0 = time.perf_counter(), time.process_time()
            if streamed:
                events = list(agent.stream(f"turn {i}", session=f"bench-{i}"))
                assert events[-1].type == "answer"
                r = agent.result(f"bench-{i}")
            else:
                r = agent.run(f"turn {i}", session=f"bench-{i}")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert r.status == "ok" and len(r.calls) == steps - 1, r
            if i >= 2:  # two warm-up turns (imports, first SQLite pages)
                inner = model.chat_s + sum(tool_s)
                per_step.append((wall - inner) / steps * 1e3)
                cpu_step.append((cpu - inner) / steps * 1e3)
        agent.close()
        rows.append((label, statistics.median(per_step), _pct(per_step, 0.9), statistics.median(cpu_step)))
    print(f"\n## Orchestration overhead per model step ({turns} turns x {steps} steps; torch threads n/a, "
          f"1 process, tool pool up to 4 threads)\n")
    load = os.getloadavg()[0]
    print(f"(1-minute load average at the end: {load:.1f} on {os.cpu_count()} CPUs; CPU ms is process CPU time, "
          "which other processes' load inflates less than wall time)\n")
    print("| checkpointer | p50 wall ms/step | p90 wall ms/step | p50 CPU ms/step |")
    print("|---|---:|---:|---:|")
    for label, p50, p90, cpu in rows:
        print(f"| {label} | {p50:.2f} | {p90:.2f} | {cpu:.2f} |")
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
    from mmagent.tools.registry import default_registry
    from PIL import Image

    from mmagent.backends import load_chat_model
    from mmagent.backends.composed import message_images
    from mmagent.media.artifacts import ArtifactStore
    from mmagent.model.generation import SamplingConfig
    from mmagent.protocol.chat import Message
    from mmagent.protocol.constrained import tool_call_processor
    from mmagent.protocol.toolcall import parse_tool_calls

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    chat_model = load_chat_model("mmagent-default")
    load_s = time.perf_counter() - t0
    m = chat_model.model  # the composed MMLLM: the same build_inputs + decode loop as chat_model.chat
    registry = default_registry()
    tools = registry.schemas()
    store = ArtifactStore(tempfile.mkdtemp(prefix="mmagent-bench-art-"), "bench")
    store.add_image(Image.new("RGB", (96, 64), "white"))
    system = Message(role="system", content="You are a helpful assistant that calls tools.")

    class Timed:
        """The grammar processor, timed per decode step."""

        def __init__(self, proc):
            self.proc, self.seconds, self.steps = proc, 0.0, 0

        def __call__(self, ids, scores):
            t0 = time.perf_counter()
            out = self.proc(ids, scores)
            self.seconds += time.perf_counter() - t0
            self.steps += 1
            return out

    rows = []
    for mode in ("free", "auto", "required"):
        with_call = blocks = parsed = valid = cut = tokens = 0
        secs = grammar_s = 0.0
        grammar_steps = 0
        for prompt, images in PROMPTS:
            msgs = [system, Message(role="user", content=prompt, images=images)]
            inputs = m.build_inputs(msgs, tools, artifacts=message_images(msgs, store), add_generation_prompt=True,
                                    reserve_tokens=max_new_tokens)
            procs = [] if mode == "free" else [Timed(tool_call_processor(
                m.tokenizer, tools, mode=mode, eos_token_ids=m.eos_token_ids, max_new_tokens=max_new_tokens))]
            t0 = time.perf_counter()
            out = m.generate(m.collate([inputs]), sampling=SamplingConfig(max_new_tokens=max_new_tokens), processors=procs)
            secs += time.perf_counter() - t0
            tokens += len(out.tokens[0])
            if procs:
                grammar_s, grammar_steps = grammar_s + procs[0].seconds, grammar_steps + procs[0].steps
            got, errors, _ = parse_tool_calls(m.tokenizer.decode(out.tokens[0], skip_special_tokens=True))
            with_call += bool(got or errors)
            blocks += len(got) + len(errors)
            parsed += len(got)
            cut += sum("cut off" in e for e in errors)
            for c in got:
                try:
                    registry.get(c.name).input_model.model_validate(c.arguments)
                    valid += 1
                except Exception:  # noqa: BLE001 - unknown tool or invalid arguments: not valid
                    pass
        ms = f"{1e3 * grammar_s / grammar_steps:.2f}" if grammar_steps else "-"
        rows.append((mode, with_call, blocks, parsed, valid, cut, tokens / secs, ms))
    print(f"\n## Constrained vs free decoding: mmagent-default (SmolLM2-135M, not tool-tuned), {len(PROMPTS)} prompts, "
          f"greedy, max {max_new_tokens} new tokens, {len(tools)} tools, torch threads {torch.get_num_threads()}; "
          f"model load {load_s:.1f} s\n")
    print("| decoding | replies with a call | call blocks | parsed | valid (schema) | cut off by the budget | tokens/s (incl. prefill) | grammar ms/token |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode, wc, n, p, v, c, tps, ms in rows:
        print(f"| {mode} | {wc}/{len(PROMPTS)} | {n} | {p} | {v} | {c} | {tps:.1f} | {ms} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--steps", type=int, default=5, help="model steps per turn (steps-1 tool calls, then an answer)")
    ap.add_argument("--skip-decode", action="store_true", help="skip the embedded-model decoding table")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    overhead(args.turns, args.steps)
    if not args.skip_decode:
        decode(args.max_new_tokens)


if __name__ == "__main__":
    main()
