"""One learning round, timed; and the anti-forgetting methods side by side.

    .venv/bin/python bench/learn.py embedded [--items 100] [--steps 20] [--regression-limit 20] [--threads 1]
    .venv/bin/python bench/learn.py methods [--threads 1]

embedded: the issue's benchmark. 100 feedback items (a newly added custom tool, convert_currency,
that the serving model mishandles; each turn logged and corrected) -> one `learn` round on the
embedded default (mmagent-default: EfficientNet-Lite0 -> projector -> SmolLM2-135M) on CPU: data
build, train (LoRA, warm start + replay 1:1), eval (regression suite + held-out feedback, serving
and candidate), promote. Prints wall time and each part's share, and the gate's scores.

methods: two rounds in the tiny world (mmagent.continual.scenario.TinyWorld): learn flip_coin,
then roll_die, with each method on identical data in one process:
  naive     no replay, no regulariser (the baseline that forgets)
  replay    replay buffer of the base data 1:1, without / with the earlier rounds' feedback 1:1
  ewc       replay + EWC on the LoRA weights
  olora     replay + O-LoRA (new subspace orthogonal to the serving adapter, stacked)
Columns: regression suite after each round, MFT / MFN / BWT over the rounds (README), train time.
The gate is set permissive here (every candidate promoted) so that forgetting shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def embedded(items: int, steps: int, regression_limit: int, threads: int) -> None:
    import torch

    from mmagent.config import get_settings
    from mmagent.continual import scenario as S
    from mmagent.continual.defaults import default_config, default_env
    from mmagent.continual.learn import learn
    from mmagent.feedback import record_feedback
    from mmagent.tools.registry import default_registry

    torch.set_num_threads(threads)
    home = Path(tempfile.mkdtemp(prefix="mmagent-bench-learn-"))
    os.environ["MMAGENT_HOME"] = str(home)
    get_settings.cache_clear()
    tools = default_registry()
    tools.register(S.convert_currency)
    env = default_env(tools=tools)
    t0 = time.perf_counter()
    for i, (prompt, call) in enumerate(S.currency_feedback(items)):
        tid = f"cur{i}"
        env.turns.start_turn(tid, f"bench-s{i % 10}", prompt, [], [], tools.names(), "mmagent-default", None, False)
        env.turns.end_turn(tid, "ok", "I can't convert currencies.", None, 1, 0)
        record_feedback(env.feedback, env.turns, env.tools, tid, "down", correct_calls=[call])
    log_s = time.perf_counter() - t0
    cfg = default_config("replay", 1.0, steps, min_learning_gain=5.0)
    cfg.update.recipe.update({"threads": threads, "batch_size": 8, "grad_accum": 1})
    cfg.regression_limit = regression_limit
    t0 = time.perf_counter()
    rep = learn(env, cfg)
    total = time.perf_counter() - t0
    t = rep.times
    parts = {"data build": (t.data_s, t.cpu["data"]), "train": (t.train_s, t.cpu["train"]), "eval (gate)": (t.eval_s, t.cpu["eval"]),
             "promote + bookkeeping": (t.promote_s, t.cpu["promote"])}
    cpu_total = sum(c for _, c in parts.values())
    print(f"\nlearning round on mmagent-default, CPU, {threads} thread(s): {items} feedback items "
          f"({rep.counts.get('train', 0)} train / {rep.counts.get('heldout', 0)} held out), {steps} steps, batch 8, "
          f"replay 1:1, regression suite limited to {regression_limit} items")
    print(f"(logging {items} turns + feedback took {log_s:.2f} s, not part of the round; load average during the run "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times include waiting for the CPU, CPU seconds do not)\n")
    print("| part | wall s | share of wall | CPU s | share of CPU |\n|---|---|---|---|---|")
    for k, (w, c) in parts.items():
        print(f"| {k} | {w:.1f} | {100 * w / total:.0f}% | {c:.1f} | {100 * c / cpu_total:.0f}% |")
    print(f"| **total** | **{total:.1f}** | 100% | **{cpu_total:.1f}** | 100% |\n")
    g = rep.gate
    print(f"gate: {'PROMOTED' if rep.promoted else 'rejected'}; " + "; ".join(g.reasons))


def methods(threads: int, steps: int) -> None:
    import torch

    from mmagent.continual import scenario as S
    from mmagent.continual.learn import learn

    torch.set_num_threads(threads)
    root = Path(tempfile.mkdtemp(prefix="mmagent-bench-methods-"))
    t0 = time.perf_counter()
    world = S.TinyWorld(root / "world")
    print(f"tiny base trained in {time.perf_counter() - t0:.1f} s; {threads} thread(s); {steps} steps per round")
    rows = []
    variants = [("naive (no replay)", "replay", 0.0, 0.0), ("replay, base data only", "replay", 1.0, 0.0),
                ("replay (base + earlier feedback)", "replay", 1.0, 1.0), ("ewc (+ replay)", "ewc", 1.0, 1.0), ("olora (+ replay)", "olora", 1.0, 1.0)]
    for name, method, ratio, earlier in variants:
        env = world.env(root / name.split()[0] / str(len(rows)))
        reg, train = [], []
        rep = None
        for tag, prompts, call in [("coin", S.COIN, S.FC), ("die", S.DIE, S.RD)]:
            S.log_corrections(env, prompts, call, tag)
            cfg = world.config(method=method, steps=steps, min_gain=-100.0)
            cfg.gate.max_regression_drop = 100.0  # permissive: show forgetting instead of refusing it
            cfg.update.replay_ratio, cfg.update.earlier_ratio = ratio, earlier
            rep = learn(env, cfg)
            reg.append(rep.gate.regression_after)
            train.append(rep.times.train_s)
        c = rep.continual
        rows.append((name, reg, c.mft, c.mfn, c.bwt, statistics.median(train)))
    base = world.env(root / "base-score")
    from mmagent.continual.learn import suite_score

    base_reg = suite_score(base.chat_model(None), world.suite, base.tools.schemas())
    print(f"\nregression suite of the base (before any round): {base_reg:.1f}\n")
    print("| method | regression after round 1 | after round 2 | MFT | MFN | BWT | train s/round (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, reg, mft, mfn, bwt, tr in rows:
        print(f"| {name} | {reg[0]:.1f} | {reg[1]:.1f} | {mft:.1f} | {mfn:.1f} | {bwt:+.1f} | {tr:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("embedded")
    e.add_argument("--items", type=int, default=100)
    e.add_argument("--steps", type=int, default=20)
    e.add_argument("--regression-limit", type=int, default=20)
    e.add_argument("--threads", type=int, default=1)
    m = sub.add_parser("methods")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    if a.what == "embedded":
        embedded(a.items, a.steps, a.regression_limit, a.threads)
    else:
        methods(a.threads, a.steps)


if __name__ == "__main__":
    main()
