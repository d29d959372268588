"""Speed of the embedded composed MM-LLM (`mmagent-default`: EfficientNet-Lite0 -> MLP -> SmolLM2-135M).

    .venv/bin/python bench/core.py                      # 1 and 2 threads, 64 new tokens, 3 reps
    .venv/bin/python bench/core.py --threads 1 --new-tokens 32 --reps 2 --json
    .venv/bin/python bench/core.py --threads 1 --isa native avx2 --turns   # + an AVX2-only CPU, + agent turns
    .venv/bin/python bench/core.py --threads 1 --blocks                    # + 32- vs 64-weight blocks beside llama.cpp

One image (skimage's chelsea) + a ~100-token user prompt, greedy decoding with EOS ignored so
every run makes exactly --new-tokens tokens. Per thread count, in the same process:

- time to first token (TTFT): image preprocess + encoder + projector + prefill + first token;
- decode tokens/s after the first token, and CPU ms per decode token (process time: what a
  token costs when other processes share the cores; wall time is what a user waits);
- the baseline, transformers' `generate` on the same spliced embeddings, beside our decode loop
  in fp32 (fused weights, static cache), bf16, and int8 decode with fp32 or bf16 prefill, the int8
  steps on torch (fbgemm) or as one onnxruntime graph per step (`mmagent.model.ort_decode`); the path
  `mmagent.model.cpu` chooses for this CPU is marked "(chosen)". Per path: TTFT cold (nothing cached)
  and with a cached prefix (the same conversation plus a short new user turn, as an agent's next
  step sees it), decode tok/s, how many leading tokens agree with the baseline's greedy output
  ("greedy=") and, fed the baseline's tokens, how many of its next-token choices match ("top-1=");
- `--isa avx2` runs the same path table in a child process limited to AVX2
  (`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`: what an AVX2-only EPYC runs natively); the
  onnxruntime rows there are not limited (its MLAS kernels pick the ISA from CPUID; no switch);
- `--turns`: the README's sign question and a greeting as one-shot `mmagent run` processes (from
  the decoder cache and without it, interleaved, after the run that writes it) and as warm turns of
  one running `Agent`;
- the llama.cpp peer on the same GGUF when `llama_cpp` is importable (it is not a dependency);
- visual token reduction (49 -> --budget tokens, merge and attention top-k): prefill speedup
  and its effect on the output (leading tokens equal to the unreduced run's).

Peak RSS is measured in a fresh subprocess that only loads the default and answers once.
Medians over --reps. The machine's load average is printed: the numbers are only comparable
between rows of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--budget", type=int, default=16, help="visual tokens kept per image by token reduction")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument("--isa", nargs="+", default=["native"], choices=["native", "avx2"],
                   help="also run the path table limited to AVX2 (a child process), side by side")
    p.add_argument("--turns", action="store_true", help="also time agent turns: one-shot processes and warm")
    p.add_argument("--blocks", action="store_true",
                   help="also compare the onnxruntime steps' weight blocks (32 vs 64) and llama.cpp, interleaved")
    p.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--paths-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_probe:
        return rss_probe(args.new_tokens)
    from mmagent.model.cpu import cpu_features

    report = {"load_average": os.getloadavg(), "new_tokens": args.new_tokens, "reps": args.reps,
              "cpu": cpu_features().describe(), "runs": []}
    bench = Bench(args.new_tokens)
    if not args.json:
        print_header(report)
    for n in args.threads:
        report["runs"].append(bench.run(n, args.reps, args.budget, reduction=not args.paths_only))
        if not args.json:
            print_run(report["runs"][-1])  # as soon as it is measured: a full run takes minutes
    if args.paths_only:
        return print(json.dumps(report))
    if "avx2" in args.isa and not report["cpu"].startswith("avx2"):
        report["avx2"] = avx2_child(args)
        if not args.json:
            print(f"\n== the same, limited to AVX2 (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2): cpu {report['avx2']['cpu']}; "
                  "onnxruntime's steps still use the full ISA ==")
            for run in report["avx2"]["runs"]:
                print_run(run)
    report["llama_cpp"] = llama_cpp_peer(args.new_tokens, args.reps)
    chosen = next(r for r in report["runs"][0]["rows"] if r.get("chosen"))
    report["decode_tok_s"] = {r["path"]: r["decode_tok_s"] for r in report["runs"][0]["rows"]}
    peer = report["llama_cpp"]
    report["llama_cpp_ratio"] = chosen["decode_tok_s"] / peer["decode_tok_s"] if peer else None
    if args.blocks:
        report["blocks"] = bench.blocks(args.reps)
        if not args.json:
            print("\nonnxruntime step weight blocks, interleaved in one loop (1 thread): " +
                  ", ".join(f"{k} {v['decode_tok_s']:.1f} tok/s (greedy= {v['agree_with_fp32']})" for k, v in report["blocks"].items()))
    if args.turns:
        report["turns"] = time_turns(args.reps)
    report["peak_rss_mb"] = measure_rss(args.new_tokens)
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2)) if args.json else print_footer(report)


class Bench:
    def __init__(self, new_tokens: int) -> None:
        import torch
        from PIL import Image
        from skimage import data

        from mmagent.backends.composed import ComposedChatModel
        from mmagent.hub.catalog import CATALOG

        torch.set_num_threads(1)
        self.torch = torch
        # fp32 weights for the baseline (plain fp32 `generate`); our paths make their own copies
        folder = CATALOG.get("mmagent-default").source.path
        self.mm = ComposedChatModel.from_pretrained(folder, "mmagent-default", dtype=torch.float32).model
        self.image = Image.fromarray(data.chelsea())
        self.new_tokens = new_tokens
        # ~100 tokens of user text (SmolLM2 tokenizer), then the 49 image tokens and the template.
        self.prompt = ("Look closely at this photograph. Describe the animal you see, its fur, its eyes and what "
                       "it seems to be doing, then say where the photo might have been taken and what time of day "
                       "it could be. Mention the colours in the background and anything unusual about the scene, "
                       "and finish with one sentence about the mood of the picture. Keep the answer short and "
                       "plain, and do not invent details that are not visible in the photo itself.")

    def batch(self):
        from mmagent.protocol.chat import Message

        msg = Message(role="user", content=self.prompt, images=["image_1"])
        x = self.mm.build_inputs([msg], artifacts={"image_1": self.image}, add_generation_prompt=True)
        return self.mm.collate([x])

    def run(self, threads: int, reps: int, budget: int, reduction: bool = True) -> dict:
        self.torch.set_num_threads(threads)
        batch = self.batch()
        rows = [self.time_hf(batch, reps)]
        chosen = chosen_path()
        for path in PATHS:
            rows.append(self.time_ours(batch, reps, path))
            rows[-1]["chosen"] = path == chosen
        base = rows[0]["tokens"]
        for r in rows:
            r["agree_with_baseline"] = agree(base, r.pop("tokens"))
        rows[0]["top1_match"] = "-"
        for r, path in zip(rows[1:], PATHS):
            r["top1_match"] = self.top1_match(batch, path, base)
        self._use(chosen)
        return {"threads": threads, "prompt_tokens": int(batch["input_ids"].shape[1]), "rows": rows,
                "reduction": self.reduction(reps, budget) if reduction else []}

    def _use(self, path: tuple[str, str, str]) -> None:
        self.mm.config.decode_dtype, self.mm.config.prefill_dtype, self.mm.config.decode_kernel = path

    def time_hf(self, batch, reps: int) -> dict:
        """transformers' `generate` from the same spliced embeddings: TTFT = 1-token run."""
        torch, mm, n = self.torch, self.mm, self.new_tokens
        ttft, dec, cpu, tokens = [], [], [], []
        kw = dict(attention_mask=batch["attention_mask"], do_sample=False, pad_token_id=mm.tokenizer.pad_token_id)
        for _ in range(reps):
            with torch.inference_mode():
                c0, t0 = time.process_time(), time.perf_counter()
                mm.llm.generate(inputs_embeds=self._embed(batch), max_new_tokens=1, **kw)
                ttft.append(time.perf_counter() - t0)
                first_cpu = time.process_time() - c0
                c0, t0 = time.process_time(), time.perf_counter()
                out = mm.llm.generate(inputs_embeds=self._embed(batch), max_new_tokens=n, min_new_tokens=n, **kw)
                full, full_cpu = time.perf_counter() - t0, time.process_time() - c0
            dec.append((n - 1) / max(full - ttft[-1], 1e-9))
            cpu.append((full_cpu - first_cpu) / (n - 1) * 1e3)
            tokens = out[0].tolist()[-n:]
        return row("HF generate, fp32 (baseline)", ttft, dec, cpu, tokens)

    def time_ours(self, batch, reps: int, path: tuple[str, str, str]) -> dict:
        from mmagent.model.generation import SamplingConfig, generate

        torch, mm = self.torch, self.mm
        self._use(path)
        decoder = mm.decoder()  # built once (fused copies), as a served model does
        ttft, cached, dec, cpu, tokens = [], [], [], [], []
        sampling = SamplingConfig(max_new_tokens=self.new_tokens)
        for _ in range(reps):
            with torch.inference_mode():
                decoder.forget()  # cold: nothing of this prompt is cached
                t0 = time.perf_counter()
                embeds = self._embed(batch)
                enc = time.perf_counter() - t0
                r = generate(decoder, embeds, batch["attention_mask"], batch["input_ids"], sampling=sampling, eos_token_ids=())
                nxt = self.next_turn(r.tokens[0])  # the agent's next step: same prefix + a short user turn
                t0 = time.perf_counter()
                e2 = self._embed(nxt)
                r2 = generate(decoder, e2, nxt["attention_mask"], nxt["input_ids"], sampling=SamplingConfig(max_new_tokens=1))
                cached.append(time.perf_counter() - t0)
            ttft.append(enc + r.ttft_s)
            dec.append((len(r.tokens[0]) - 1) / r.decode_s)
            cpu.append(r.decode_cpu_s / (len(r.tokens[0]) - 1) * 1e3)
            tokens = r.tokens[0]
        out = row(f"ours, {decoder.path()}", ttft, dec, cpu, tokens)
        out["ttft_cached_s"] = statistics.median(cached)
        out["reused_tokens"] = decoder.reused
        return out

    def next_turn(self, reply: list[int]):
        from mmagent.protocol.chat import Message

        msgs = [Message(role="user", content=self.prompt, images=["image_1"]),
                Message(role="assistant", content=self.mm.tokenizer.decode(reply, skip_special_tokens=True)),
                Message(role="user", content="Thanks. Now say it in one short sentence.")]
        x = self.mm.build_inputs(msgs, artifacts={"image_1": self.image}, add_generation_prompt=True)
        return self.mm.collate([x])

    def top1_match(self, batch, path: tuple[str, str, str], ref: list[int]) -> str:
        """Teacher-forced: fed the baseline's tokens, how often each step's argmax is the baseline's.
        (Greedy outputs drift apart after the first differing token; this counts every decision.)"""
        torch, mm = self.torch, self.mm
        self._use(path)
        decoder = mm.decoder()
        decoder.forget()
        with torch.inference_mode():
            logits = decoder.prefill(self._embed(batch), batch["attention_mask"], len(ref))
            hits = 0
            for i, tok in enumerate(ref):
                hits += int(logits.argmax(-1)[0]) == tok
                if i < len(ref) - 1:
                    logits = decoder.step(torch.tensor([tok]))
        return f"{hits}/{len(ref)}"

    def blocks(self, reps: int) -> dict[str, dict]:
        """The chosen int8 onnxruntime steps with 8-bit blocks of 32 and of 64 (`ort_decode.block_size`), and
        llama.cpp when importable, interleaved rep by rep (the VM's noise hits all alike); greedy agreement
        with our fp32 decoder on the same prompt."""
        from mmagent.model import llama_decoder, ort_decode
        from mmagent.model.generation import SamplingConfig, generate

        torch, mm, n = self.torch, self.mm, self.new_tokens
        batch = self.batch()
        wide, decoders = ort_decode.WIDE_BLOCK, {}
        try:
            for width in (32, 64):
                ort_decode.WIDE_BLOCK = width
                decoders[f"blocks {width}"] = llama_decoder.LlamaDecoder(mm.llm, quantize=True, dtype=torch.float32, engine="onnxruntime")
                decoders[f"blocks {width}"].pack()
        finally:
            ort_decode.WIDE_BLOCK = wide
        sampling = SamplingConfig(max_new_tokens=n)

        def run(decoder):
            decoder.forget()
            with torch.inference_mode():
                return generate(decoder, self._embed(batch), batch["attention_mask"], batch["input_ids"], sampling=sampling, eos_token_ids=())

        ref = run(llama_decoder.LlamaDecoder(mm.llm)).tokens[0]
        rates: dict[str, list[float]] = {k: [] for k in decoders}
        tokens: dict[str, list[int]] = {}
        peer = llama_cpp_model()
        for _ in range(reps):
            for name, decoder in decoders.items():
                r = run(decoder)
                rates[name].append((len(r.tokens[0]) - 1) / r.decode_s)
                tokens[name] = r.tokens[0]
            if peer is not None:
                rates.setdefault("llama.cpp", []).append(llama_cpp_rate(peer, n))
        return {k: {"decode_tok_s": statistics.median(v), "agree_with_fp32": agree(ref, tokens[k]) if k in tokens else "-"}
                for k, v in rates.items()}

    def reduction(self, reps: int, budget: int) -> list[dict]:
        """TTFT and output with 49 visual tokens vs `budget` (merge, attention top-k), default decoder."""
        from mmagent.model.generation import SamplingConfig, generate
        from mmagent.model.token_reduction import ReductionConfig, TokenReducer

        torch, mm = self.torch, self.mm
        self._use(chosen_path())
        out, ref = [], None
        for method in ("none", "merge", "topk"):
            mm.config.reduction = ReductionConfig(method=method, budget=budget)
            mm.reducer = TokenReducer(mm.config.reduction)
            batch = self.batch()
            times, tokens = [], []
            for _ in range(reps):
                with torch.inference_mode():
                    mm.decoder().forget()
                    t0 = time.perf_counter()
                    r = generate(mm.decoder(), self._embed(batch), batch["attention_mask"], batch["input_ids"],
                                 sampling=SamplingConfig(max_new_tokens=min(32, self.new_tokens)), eos_token_ids=())
                    times.append(time.perf_counter() - t0 - r.decode_s)
                tokens = r.tokens[0]
            ref = ref or (statistics.median(times), tokens)
            out.append({"method": method, "visual_tokens": mm.tokens_per_image, "prompt_tokens": int(batch["input_ids"].shape[1]),
                        "ttft_s": statistics.median(times), "speedup": ref[0] / statistics.median(times),
                        "agree_with_unreduced": agree(ref[1], tokens),
                        "text": mm.tokenizer.decode(tokens[:16], skip_special_tokens=True)})
        mm.config.reduction = ReductionConfig()
        mm.reducer = TokenReducer(mm.config.reduction)
        return out

    def _embed(self, batch):
        pixels = self.mm.encoder.preprocess([self.image])  # the image's preprocessing is part of TTFT
        return self.mm.embed(batch["input_ids"], pixels)


# (decode_dtype, prefill_dtype, decode_kernel) of every path the table forces; the chosen one is marked.
PATHS = [("float32", "auto", "torch"), ("bfloat16", "auto", "torch"), ("int8", "float32", "torch"), ("int8", "bfloat16", "torch"),
         ("int8", "float32", "onnxruntime"), ("int8", "bfloat16", "onnxruntime")]


def chosen_path() -> tuple[str, str, str]:
    """What the shipped default's config ("int8", "auto", "auto") resolves to on this CPU."""
    import torch

    from mmagent.model.llama_decoder import choose_path

    dtype, _, engine = choose_path("int8", "auto", torch.float32, "auto")
    return ("int8", str(dtype).removeprefix("torch."), engine)


def avx2_child(args) -> dict:
    """The path table in a child process that torch and oneDNN limit to AVX2."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--paths-only", "--json", "--threads", *map(str, args.threads),
           "--new-tokens", str(args.new_tokens), "--reps", str(args.reps)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def llama_cpp_model():
    """llama.cpp on the same Q4_1 GGUF (1 thread), when `llama_cpp` is importable and the GGUF provisioned; else None."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from mmagent.hub.catalog import CATALOG
    from mmagent.hub.provision import model_dir

    gguf = next(model_dir(CATALOG.get("smollm2-135m-instruct")).rglob("*.gguf"), None)
    return None if gguf is None else Llama(model_path=str(gguf), n_threads=1, n_ctx=1024, verbose=False)


def llama_cpp_rate(llm, new_tokens: int) -> float:
    """Tokens/s of one greedy run of exactly `new_tokens` (its short prompt's prefill included)."""
    t0 = time.perf_counter()
    # llama-cpp-python has no ignore_eos: the end-of-text token is banned instead, so every run decodes new_tokens
    out = llm("Describe a cat in detail.", max_tokens=new_tokens, temperature=0.0, logit_bias={llm.token_eos(): -1e9})
    return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)


def llama_cpp_peer(new_tokens: int, reps: int) -> dict | None:
    """The llama.cpp peer's median tokens/s over `reps`, or None without llama_cpp."""
    llm = llama_cpp_model()
    if llm is None:
        return None
    rates = [llama_cpp_rate(llm, new_tokens) for _ in range(reps)]
    return {"decode_tok_s": statistics.median(rates), "gguf": Path(llm.model_path).name}


TURNS = {"sign question": ("What does this sign say?", ["examples/sign.png"]), "greeting": ("Hi! How are you today?", [])}


def time_turns(reps: int) -> list[dict]:
    """Each turn as a one-shot `mmagent run` process (wall, models provisioned) and as a warm
    turn of one running Agent (the second of two runs in a session of its own)."""
    import tempfile

    from mmagent.agent import Agent
    from mmagent.config import get_settings

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    with tempfile.TemporaryDirectory() as home, Agent(checkpoint=":memory:", log=os.path.join(home, "log.sqlite"),
                                                      artifacts_root=os.path.join(home, "art")) as agent:
        settings = get_settings()  # the processes use this home's provisioned models, a fresh log
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MMAGENT_HOME": home,
               "MMAGENT_CACHE_DIR": str(settings.cache_dir or settings.home / "models")}
        for name, (prompt, images) in TURNS.items():
            cmd = [sys.executable, "-m", "mmagent.cli", "run", prompt, *sum((["--image", i] for i in images), []), "--json"]
            walls: dict[str, list[float]] = {"0": [], "1": []}  # without / with the decoder cache, interleaved
            answer = ""
            for i in range(2 * reps + 1):
                cache = "1" if i == 0 or i % 2 else "0"  # run 0 writes the cache (the first run after a pull)
                t0 = time.perf_counter()
                out = subprocess.run(cmd, capture_output=True, text=True, env={**env, "MMAGENT_DECODER_CACHE": cache}, cwd=root)
                wall = time.perf_counter() - t0
                if i == 0:
                    first = wall
                else:
                    walls[cache].append(wall)
                answer = json.loads(out.stdout).get("answer", "") if out.stdout.strip() else out.stderr[-200:]
            warm = []
            for i in range(reps + 1):
                t0 = time.perf_counter()
                agent.run(prompt, images=[os.path.join(root, p) for p in images], session=f"{name}-{i}")
                warm.append(time.perf_counter() - t0)
            rows.append({"turn": name, "one_shot_s": statistics.median(walls["1"]), "one_shot_no_cache_s": statistics.median(walls["0"]),
                         "first_run_s": first, "warm_s": statistics.median(warm[1:]), "answer": answer})
    return rows


def row(label: str, ttft: list[float], dec: list[float], cpu: list[float], tokens: list[int]) -> dict:
    return {"path": label, "ttft_s": statistics.median(ttft), "decode_tok_s": statistics.median(dec),
            "cpu_ms_per_token": statistics.median(cpu), "tokens": tokens}


def agree(ref: list[int], got: list[int]) -> str:
    same = next((i for i, (a, b) in enumerate(zip(ref, got)) if a != b), min(len(ref), len(got)))
    return f"{same}/{len(ref)}"


def measure_rss(new_tokens: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--rss-probe", "--new-tokens", str(new_tokens)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def rss_probe(new_tokens: int) -> None:
    """Loads the default and answers one image question; prints the process's peak RSS."""
    import torch
    from PIL import Image
    from skimage import data

    from mmagent.backends import load_chat_model
    from mmagent.protocol.chat import Message

    torch.set_num_threads(1)
    model = load_chat_model("mmagent-default")
    model.chat([Message(role="user", content="Describe this image.", images=["image_1"])],
               artifacts={"image_1": Image.fromarray(data.chelsea())}, max_new_tokens=new_tokens)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM belongs to the process's own memory map; getrusage's
    maxrss survives exec on Linux, so a child spawned from a big parent would report the parent's."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_header(report: dict) -> None:
    la = ", ".join(f"{x:.1f}" for x in report["load_average"])
    print(f"mmagent-default, greedy, {report['new_tokens']} new tokens, median of {report['reps']}; cpu {report['cpu']}; "
          f"load average at start {la} (2-core machine)", flush=True)


def print_run(run: dict) -> None:
    print(f"\n== {run['threads']} thread(s), prompt {run['prompt_tokens']} tokens (49 visual) ==")
    print(f"{'path':50} {'TTFT s':>7} {'cached s':>8} {'decode tok/s':>13} {'CPU ms/tok':>11} {'greedy=':>7} {'top-1=':>7}")
    base = run["rows"][0]["decode_tok_s"]
    for r in run["rows"]:
        label = r["path"] + (" (chosen)" if r.get("chosen") else "")
        cached = f"{r['ttft_cached_s']:8.3f}" if "ttft_cached_s" in r else f"{'-':>8}"
        print(f"{label:50} {r['ttft_s']:7.3f} {cached} {r['decode_tok_s']:8.1f} ({r['decode_tok_s'] / base:3.1f}x) "
              f"{r['cpu_ms_per_token']:11.1f} {r['agree_with_baseline']:>7} {r['top1_match']:>7}")
    if not run["reduction"]:
        return
    print(f"\n{'token reduction':16} {'visual':>6} {'prompt':>6} {'TTFT s':>7} {'speedup':>8} {'agrees':>7}  output")
    for r in run["reduction"]:
        print(f"{r['method']:16} {r['visual_tokens']:6d} {r['prompt_tokens']:6d} {r['ttft_s']:7.3f} "
              f"{r['speedup']:7.2f}x {r['agree_with_unreduced']:>7}  {r['text']!r}", flush=True)


def print_footer(report: dict) -> None:
    peer = report.get("llama_cpp")
    if peer:
        print(f"\nllama.cpp ({peer['gguf']}, 1 thread): {peer['decode_tok_s']:.1f} tok/s; chosen path / peer = {report['llama_cpp_ratio']:.2f}")
    else:
        print("\nllama.cpp peer: llama_cpp not importable (pip install llama-cpp-python builds it from source, ~12 min)")
    for t in report.get("turns", []):
        print(f"turn {t['turn']!r}: one-shot process {t['one_shot_s']:.1f} s from the decoder cache "
              f"({t['one_shot_no_cache_s']:.1f} s without it, {t['first_run_s']:.1f} s for the run that writes it), "
              f"warm {t['warm_s']:.2f} s  -> {t['answer'][:60]!r}")
    print(f"\npeak RSS (fresh process: load mmagent-default + one image answer, 1 thread): {report['peak_rss_mb']:.0f} MB")
    print(f"load average at end {', '.join(f'{x:.1f}' for x in report['load_average_end'])}")


if __name__ == "__main__":
    main()
