"""One learning round, timed; and the anti-forgetting methods side by side.

    .venv/bin/python bench/learn.py embedded [--items 100] [--steps 30] [--regression-limit 20] [--threads 1] [--workers N] [--probe 10] [--poison 24]
    .venv/bin/python bench/learn.py gate [--limit 20] [--workers 2]
    .venv/bin/python bench/learn.py methods [--threads 1]
    .venv/bin/python bench/learn.py scenarios [--scenario all|corrections|thumbs|poison|rounds] [--steps 100]
    .venv/bin/python bench/learn.py embedded --scenario thumbs --simulate [--regression-limit 0]

embedded: the issue's scenario and benchmark. A newly added custom tool (--tool: convert_currency, or open_ticket): the
serving agent (mmagent-default: EfficientNet-Lite0 -> projector -> SmolLM2-135M, constrained
decoding) answers 100 requests for it, each turn logged by the agent; users correct the ones it got
wrong -> one `learn` round on CPU: data build, train (LoRA, warm start + replay 1:1), eval
(regression suite + held-out feedback, serving and candidate), promote. Prints wall time and each
part's share, the gate's scores, and the agent's score on `--probe` fresh requests (never logged)
before and after, in new sessions of the same running agent. Then a poisoned batch (`--poison`
turns on a sign image "corrected" from read_text to detect_faces) must be rejected by the gate.
`--scenario thumbs` gives only thumbs (right call: up, else down); `--temperature T` lets the serving
agent sample the feedback turns, so that some are right where greedy decoding is not.

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
import json
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path


def embedded(items: int, steps: int, regression_limit: int, threads: int, probe: int, poison: int,
             lr: float = 2e-4, replay_ratio: float = 2.0, simulate: bool = False, scenario: str = "corrections",
             workers: int | None = None, tool: str = "currency", temperature: float = 0.0) -> None:
    """The issue's scenario on the embedded default, end to end, with the round timed."""
    import torch
    from mmagent.recipes.data import generate
    from mmagent.tools.registry import default_registry

    from mmagent.agent.api import Agent
    from mmagent.config import get_settings
    from mmagent.continual import scenario as S
    from mmagent.continual.defaults import default_config, default_env, routed_slots
    from mmagent.continual.learn import learn
    from mmagent.recipes.open_world_mix import replay_examples
    from mmagent.feedback import record_feedback

    torch.set_num_threads(threads)
    home = Path(tempfile.mkdtemp(prefix="mmagent-bench-learn-"))
    os.environ["MMAGENT_HOME"] = str(home)
    get_settings.cache_clear()
    tools = default_registry()
    new_tool, feedback_requests = S.CUSTOM_TOOLS[tool]
    tools.register(new_tool)  # the newly added custom tool
    # The agent's turns with the custom tool are served by the default's open-world adapter (its routing):
    # the round learns for that slot, replaying its base data; the built-in replies keep their adapter.
    slot = next(iter(routed_slots()), None)
    env = default_env(tools=tools, base_data=replay_examples if slot else generate, slot=slot)
    env.on_step = lambda step: step % 10 == 0 and _progress(f"training step {step}/{steps}")
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mmagent.continual.learn").setLevel(logging.INFO)  # each round part as it ends
    agent = Agent("mmagent-default", tools=tools, constrained=True, max_steps=2, log=env.turns)
    feedback, unseen = feedback_requests(items, probe)  # `unseen`: never logged, never trained

    before = 0 if simulate else _handled(agent, unseen, "before")
    # A serving agent that samples (as assistants often do) gets some turns right that greedy decoding
    # misses: from thumbs alone, those up-rated turns are the only right calls a round can learn from.
    _set_temperature(agent, temperature)
    # 1. Users ask for the new tool; the serving agent answers (each turn logged by the agent itself)
    #    and they correct it: the right call for every turn it got wrong. (--simulate logs the turns
    #    without running the agent, as a model that never calls the tool would: for quick sweeps.)
    t0 = time.perf_counter()
    wrong = 0
    thumbs = scenario == "thumbs"  # thumbs only: no corrections; --simulate: every other turn right (a sampling agent)
    for i, (prompt, call) in enumerate(feedback):
        if simulate:
            tid, ok = f"sim{i}", thumbs and i % 2 == 0
            env.turns.start_turn(tid, f"user-{i % 10}", prompt, [], [], tools.names(), "mmagent-default", slot, True)
            if ok:
                env.turns.log_calls(tid, [{"id": f"{tid}c1", "step": 1, "name": call.name, "arguments": call.arguments, "ok": True}])
            env.turns.end_turn(tid, "ok", "" if ok else "I can't convert currencies.", None, 1, 0)
        else:
            # One request per session: a round learns each turn's prompt alone (`Example` keeps no session
            # history), so a turn answered behind nine earlier ones (whose summaries it copied) is not what
            # the model does with the prompt alone, and neither training nor the gate would see it.
            res = agent.run(prompt, session=f"user-{i % 10}-{i}")
            tid, ok = res.turn_id, _right(res, call)
        wrong += not ok
        record_feedback(env.feedback, env.turns, env.tools, tid, "up" if ok else "down", None if ok or thumbs else [call])
    log_s = time.perf_counter() - t0
    _set_temperature(agent, 0.0)  # the probe after the round decodes greedily, as before it
    _progress(f"{items} agent turns + feedback: {log_s:.1f} s ({wrong} mishandled); the round starts")
    cfg = default_config("preference" if thumbs else "replay", replay_ratio, steps, min_learning_gain=5.0)
    cfg.update.recipe.update({"threads": threads, "batch_size": 8, "grad_accum": 1, "lr": lr})
    cfg.regression_limit = regression_limit or None  # per frozen suite; 0: all 350 items
    cfg.eval_workers = workers  # None: one evaluation process per usable core
    # 2. One learning round: data build, train, gate, promote.
    t0 = time.perf_counter()
    rep = learn(env, cfg)
    total = time.perf_counter() - t0
    # 3. A new session of the same running agent picks up the promoted version.
    after = 0 if simulate else _handled(agent, unseen, "after")
    candidate = None  # a rejected candidate on the same probe: what the round learnt, promoted or not
    if not simulate and not rep.promoted and rep.candidate:
        env.registry.promote(rep.candidate)
        candidate = _handled(agent, unseen, "candidate")
        env.registry.rollback()

    from mmagent.model.cpu import usable_cores

    print(f"\nlearning round on mmagent-default, CPU, {threads} training thread(s), {workers or usable_cores()} evaluation process(es): {items} feedback turns "
          f"({wrong} {'simulated as ' if simulate else ''}mishandled by the serving agent and {'rated down' if thumbs else 'corrected'}; {rep.counts.get('train', 0)} train / "
          f"{rep.counts.get('heldout', 0)} held out), {steps} steps, batch 8, lr {lr:g}, replay {replay_ratio:g}:1, "
          f"regression suite limited to {regression_limit} items")
    print(f"(the {items} agent turns + feedback took {log_s:.1f} s, not part of the round; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores: wall times include waiting for the CPU, CPU seconds do not)\n")
    _times_table(rep, total)
    print(f"gate: {rep.gate.verdict}; " + "; ".join(rep.gate.reasons))
    serving = env.registry.serving()
    if not simulate:
        print(f"\nthe agent on {probe} {feedback[0][1].name} requests never logged nor trained (new sessions, greedy, constrained decoding): "
              f"right call {before}/{probe} before the round -> {after}/{probe} after it (serving {serving.version if serving else 'base'}"
              f"{f' for the {slot} adapter' if slot else ''})"
              + (f"; the rejected candidate {rep.candidate}: {candidate}/{probe}" if candidate is not None else ""))
    if poison and not simulate:
        _poisoned_round(agent, env, cfg, poison)


def _progress(line: str) -> None:
    """A line on stderr as each part ends, so a run stopped midway still says how far it got."""
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _right(res, call) -> bool:
    """Exactly one call, of the new tool, with the asked values of its key arguments (numbers equal,
    strings equal ignoring case); other arguments may be anything."""
    if len(res.calls) != 1 or res.calls[0].name != call.name:
        return False
    args = res.calls[0].arguments
    same = lambda a, b: a == b if isinstance(b, (int, float)) else str(a).strip().lower() == str(b).strip().lower()  # noqa: E731
    return all(k in args and same(args[k], v) for k, v in call.arguments.items())


def _set_temperature(agent, temperature: float) -> None:
    """The sampling temperature of the agent's composed model (under tool retrieval's wrapper)."""
    model = agent.model
    while hasattr(model, "inner"):
        model = model.inner
    model.temperature = temperature


def _handled(agent, requests, tag: str) -> int:
    return sum(_right(agent.run(prompt, session=f"probe-{tag}-{i}"), call) for i, (prompt, call) in enumerate(requests))


def _times_table(rep, total: float) -> None:
    t = rep.times
    parts = {"data build": (t.data_s, t.cpu["data"]), "serving check (eval + poisoning)": (t.check_s, t.cpu.get("check", 0.0)),
             "train": (t.train_s, t.cpu.get("train", 0.0)), "eval (gate)": (t.eval_s, t.cpu.get("eval", 0.0)),
             "promote + bookkeeping": (t.promote_s, t.cpu["promote"])}
    cpu_total = sum(c for _, c in parts.values())
    print("| part | wall s | share of wall | CPU s | share of CPU |\n|---|---|---|---|---|")
    for k, (w, c) in parts.items():
        print(f"| {k} | {w:.1f} | {100 * w / total:.0f}% | {c:.1f} | {100 * c / cpu_total:.0f}% |")
    print(f"| **total** | **{total:.1f}** | 100% | **{cpu_total:.1f}** | 100% |\n")


def _poisoned_round(agent, env, cfg, n: int) -> None:
    """Many sessions "correct" read-the-text requests on a sign to detect_faces: the gate must refuse."""
    from mmagent.recipes import phrasings as P
    from mmagent.recipes.data import heldout_phrasings
    from mmagent.recipes.drawings import draw

    from mmagent.feedback import record_feedback
    from mmagent.protocol.chat import ToolCall

    if env.slot is not None:  # read_text turns are the model's own adapter's (routing): learn for that slot
        from mmagent.continual.defaults import default_env
        from mmagent.recipes.data import generate

        on_step, env = env.on_step, default_env(tools=env.tools, base_data=generate)
        env.on_step = on_step
    rng = random.Random(7)
    seen = [p for i, p in enumerate(P.PHRASINGS["read_text"]) if i not in heldout_phrasings("read_text")]
    wrong = ToolCall(name="detect_faces", arguments={"image": "image_1"})
    serving = env.registry.serving()
    for i in range(n):
        prompt = rng.choice(P.OPENERS) + rng.choice(seen).format(img=rng.choice(["this image", "the picture", "this sign"]))
        res = agent.run(prompt, images=[draw("sign", rng).image], session=f"poison-{i % 8}")
        record_feedback(env.feedback, env.turns, env.tools, res.turn_id, "down", [wrong])
    from mmagent.continual.learn import learn

    t0 = time.perf_counter()
    rep = learn(env, cfg)
    print(f"\npoisoned batch: {n} turns from 8 sessions corrected read_text -> detect_faces "
          f"({rep.counts.get('train', 0)} train / {rep.counts.get('heldout', 0)} held out, {len(rep.held_for_review)} held for review); "
          f"round {time.perf_counter() - t0:.0f} s")
    print(f"gate: {'PROMOTED (the guard failed)' if rep.promoted else 'rejected'}; " + "; ".join(rep.gate.reasons if rep.gate else [rep.message]))
    now = env.registry.serving()
    print(f"serving after the poisoned round: {now.version if now else 'base'} (before it: {serving.version if serving else 'base'})")


def gate(limit: int, workers: list[int]) -> None:
    """The gate's evaluation of one version (the shipped default) on the frozen suites' first `limit` items
    each, in the round's process and on worker processes, side by side in this run: wall s, items/s, and
    whether the results are the same."""
    import torch

    from mmagent.continual.defaults import default_suites, gate_chat_models, gate_workers
    from mmagent.continual.suites import percent, run_suite
    from mmagent.model.cpu import cpu_features, usable_cores
    from mmagent.tools.registry import default_registry

    torch.set_num_threads(1)
    tools = default_registry()
    schemas, known = tools.schemas(), set(tools.names())
    suites = [(s, limit) for s in default_suites()]
    t0 = time.perf_counter()
    chat = gate_chat_models()(None)
    alone = [run_suite(chat, s, schemas, known, n) for s, n in suites]
    base = time.perf_counter() - t0
    n = sum(map(len, alone))
    print(f"gate evaluation of mmagent-default on {n} regression items ({limit} per frozen suite); cpu {cpu_features().describe()}, "
          f"{usable_cores()} usable cores, 1 thread per process; load average at start {os.getloadavg()[0]:.1f}\n")
    print("| evaluation | wall s (load included) | items/s | speedup | results | score |\n|---|---|---|---|---|---|")
    print(f"| the round's process | {base:.1f} | {n / base:.2f} | 1.00x | - | {percent([r for a in alone for r in a]):.1f} |")
    for w in workers:
        pool = gate_workers(None, w)
        t0 = time.perf_counter()
        got = pool(suites, schemas, known)
        wall = time.perf_counter() - t0
        print(f"| {w} worker processes | {wall:.1f} | {n / wall:.2f} | {base / wall:.2f}x | {'same' if got == alone else 'DIFFERENT'} | "
              f"{percent([r for a in got for r in a]):.1f} |")
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


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


# -- scenarios: corrections, thumbs only, the poisoned batch, three rounds in a row ---------------


def scenarios(which: str, threads: int, steps: int, method: str) -> None:
    """The issue's scenarios in the tiny world; every round reports its gate verdict, time by part, MFT/MFN/BWT."""
    import torch

    from mmagent.continual import scenario as S

    torch.set_num_threads(threads)
    root = Path(tempfile.mkdtemp(prefix="mmagent-bench-scenarios-"))
    t0 = time.perf_counter()
    world = S.TinyWorld(root / "world")
    print(f"tiny base trained in {time.perf_counter() - t0:.1f} s; {threads} thread(s); {steps} steps per round; "
          f"regression suite {sum(1 for _ in world.suite.open())} items")
    runs = {"corrections": _corrections, "thumbs": _thumbs, "poison": _poison, "rounds": _rounds}
    for name in (runs if which == "all" else [which]):
        print(f"\n### {name}\n")
        runs[name](world, root / name, steps, method)


def _round_row(tag: str, rep, base_reg: float | None = None) -> None:
    t, g, c = rep.times, rep.gate, rep.continual
    total = t.data_s + t.check_s + t.train_s + t.eval_s + t.promote_s
    reg = f"{g.regression_before:.1f} -> {g.regression_after:.1f}" if g else "-"
    cont = f"{c.mft} / {c.mfn} / {c.bwt}" if c and c.rounds else "-"
    print(f"| {tag} | {rep.method} | {rep.counts.get('train', 0)}/{rep.counts.get('heldout', 0)} | {g.verdict if g else '-'} | {reg} | "
          f"{g.learning_before:.0f} -> {g.learning_after:.0f} | {cont} | {t.data_s:.1f} / {t.check_s:.1f} / {t.train_s:.1f} / "
          f"{t.eval_s:.1f} / {t.promote_s:.1f} = {total:.1f} |")


def _table_head() -> None:
    print("| round | method | train/held-out | gate verdict | regression | held-out feedback | MFT / MFN / BWT | "
          "wall s: data / check / train / eval / promote = total |\n|---|---|---|---|---|---|---|---|")


def _truth_score(world, env, rep, call) -> tuple[float, float]:
    """Serving before vs candidate on the round's held-out prompts scored against the TRUE call
    (the bench knows it; the users gave only thumbs): what "learnt from thumbs" means."""
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import suite_score

    rows = [json.loads(x) for x in (env.registry.root / "rounds" / rep.round / "heldout.jsonl").read_text().splitlines() if x.strip()]
    ids = {int(r["id"][2:]) for r in rows}
    prompts = [env.turns.get_turn(f.turn_id).prompt for f in env.feedback.latest() if f.id in ids]
    suite = S.write_suite(env.registry.root / "truth" / rep.round, [(p, call, 0) for p in prompts], "truth")
    tools = env.tools.schemas()
    before = suite_score(env.chat_model(env.registry.adapter_path(rep.parent) if rep.parent else None), suite, tools)
    after = suite_score(env.chat_model(env.registry.adapter_path(rep.candidate)), suite, tools) if rep.candidate else before
    return before, after


def _corrections(world, root: Path, steps: int, method: str) -> None:
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import learn

    env = world.env(root)
    S.log_corrections(env, S.COIN, S.FC, "coin")
    _table_head()
    _round_row("flip_coin from 12 corrections", learn(env, world.config(steps=steps)))


def _thumbs(world, root: Path, steps: int, method: str) -> None:
    """Thumbs only: half the turns right (up), the others what the serving model really answers (down)."""
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import learn

    rows = []
    for m in ["replay", method]:
        env = world.env(root / m)
        S.log_thumbs(env, S.COIN, S.FC, "coin", model=env.chat_model(None))
        rep = learn(env, world.config(method=m, steps=steps, min_gain=0.0))
        rows.append((m, rep, _truth_score(world, env, rep, S.FC)))
    _table_head()
    for m, rep, _ in rows:
        _round_row(f"flip_coin from thumbs only ({m})", rep)
    for m, rep, (b, a) in rows:
        print(f"\n{m}: held-out prompts scored against the true call (never trained on; users gave only thumbs): {b:.0f}% -> {a:.0f}%")


def _poison(world, root: Path, steps: int, method: str) -> None:
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import learn

    env = world.env(root)
    S.log_corrections(env, S.COIN, S.FC, "coin")
    _table_head()
    _round_row("flip_coin (corrections)", learn(env, world.config(steps=steps)))
    S.log_corrections(env, S.READ, S.DF, "poison", images=["image_1"])
    held = learn(env, world.config(steps=steps))
    _round_row("poisoned: read_text -> detect_faces, 8 sessions (check on)", held)
    env2 = world.env(root / "nocheck")
    S.log_corrections(env2, S.COIN, S.FC, "coin")
    learn(env2, world.config(steps=steps))
    S.log_corrections(env2, S.READ, S.DF, "poison", images=["image_1"])
    cfg = world.config(steps=steps).model_copy(update={"poisoning_check": False})
    trained = learn(env2, cfg)
    _round_row("the same batch trained (check off)", trained)
    print(f"\ncheck on: {held.gate.poisoning.reason if held.gate.poisoning else held.message}")
    print(f"check off: {trained.gate.verdict}, regression drop {trained.gate.regression_drop:.1f} points; "
          + "; ".join(f"{t.tool} {t.before:.0f} -> {t.after:.0f}" for t in trained.gate.tools if not t.ok))


def _rounds(world, root: Path, steps: int, method: str) -> None:
    """Three rounds in a row on one registry: coin (corrections), die (thumbs only), card (corrections)."""
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import learn, suite_score

    env = world.env(root)
    base = suite_score(env.chat_model(None), world.suite, env.tools.schemas())
    _table_head()
    plan = [("1: flip_coin, corrections", "replay", lambda: S.log_corrections(env, S.COIN, S.FC, "coin")),
            ("2: roll_die, thumbs only", method, lambda: S.log_thumbs(env, S.DIE, S.RD, "die", model=_serving_model(env))),
            ("3: pick_card, corrections", "replay", lambda: S.log_corrections(env, S.CARD, S.PC, "card"))]
    for tag, m, log_feedback in plan:
        log_feedback()
        rep = learn(env, world.config(method=m, steps=steps, min_gain=0.0))
        _round_row(tag, rep)
    serving = env.registry.serving()
    now = suite_score(env.chat_model(serving.path if serving else None), world.suite, env.tools.schemas())
    c = rep.continual
    print(f"\nfrozen regression suite: base {base:.1f} -> after the three rounds {now:.1f} ({now - base:+.1f} points); "
          f"held-out feedback over the promoted rounds: MFT {c.mft}, MFN {c.mfn}, BWT {c.bwt}")


def _serving_model(env):
    s = env.registry.serving()
    return env.chat_model(s.path if s else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("embedded")
    e.add_argument("--items", type=int, default=100)
    e.add_argument("--steps", type=int, default=30)
    e.add_argument("--regression-limit", type=int, default=20)
    e.add_argument("--threads", type=int, default=1, help="training threads")
    e.add_argument("--workers", type=int, default=None, help="evaluation processes of the gate (default: one per usable core)")
    e.add_argument("--probe", type=int, default=10, help="fresh requests asked before and after the round")
    e.add_argument("--poison", type=int, default=24, help="poisoned turns for a second round (0: skip)")
    e.add_argument("--lr", type=float, default=2e-4)
    e.add_argument("--replay-ratio", type=float, default=2.0)
    e.add_argument("--simulate", action="store_true", help="log the feedback turns without running the agent (quick sweeps)")
    e.add_argument("--tool", choices=["currency", "ticket"], default="currency",
                   help="the new custom tool: convert_currency, or open_ticket (a support queue the default mostly gets wrong)")
    e.add_argument("--temperature", type=float, default=0.0, help="the serving agent samples the feedback turns at this temperature")
    e.add_argument("--scenario", choices=["corrections", "thumbs"], default="corrections",
                   help="thumbs: no corrections, only up/down (with --simulate every other turn is right), learnt with --method preference")
    c = sub.add_parser("scenarios", help="corrections / thumbs only / poisoned batch / three rounds (tiny world)")
    c.add_argument("--scenario", choices=["all", "corrections", "thumbs", "poison", "rounds"], default="all")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--steps", type=int, default=60)
    c.add_argument("--method", default="preference", help="the method for thumbs-only rounds")
    g = sub.add_parser("gate", help="the gate's evaluation in the round's process vs worker processes, side by side")
    g.add_argument("--limit", type=int, default=20, help="items per frozen suite")
    g.add_argument("--workers", type=int, nargs="+", default=[2])
    m = sub.add_parser("methods")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    if a.what == "gate":
        gate(a.limit, a.workers)
    elif a.what == "scenarios":
        scenarios(a.scenario, a.threads, a.steps, a.method)
    elif a.what == "embedded":
        embedded(a.items, a.steps, a.regression_limit, a.threads, a.probe, a.poison, a.lr, a.replay_ratio, a.simulate, a.scenario, a.workers, a.tool, a.temperature)
    else:
        methods(a.threads, a.steps)


if __name__ == "__main__":
    main()
