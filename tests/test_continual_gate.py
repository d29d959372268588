"""The gate on per-item results: per-tool floor, verdict names, the poisoning check; the result
cache; a round only learns from turns its model served; `avoid` items."""

from __future__ import annotations

from mmagent.continual.dataset import Example
from mmagent.continual.gate import GateConfig, decide_results, poisoning_check
from mmagent.continual.suites import NO_TOOL, ItemResult, ScoreCache, _avoids
from mmagent.protocol.chat import ToolCall


def _results(spec: dict[str, tuple[int, int]]) -> list[ItemResult]:
    """tool -> (items, right) as results with ids tool/i."""
    return [ItemResult(id=f"{t}/{i}", groups=[t], ok=i < right) for t, (n, right) in spec.items() for i in range(n)]


def test_per_tool_floor_names_the_tool_even_when_the_total_holds():
    before = _results({"read_text": (20, 20), "detect_faces": (20, 20), NO_TOOL: (200, 190)})
    after = _results({"read_text": (20, 17), "detect_faces": (20, 20), NO_TOOL: (200, 193)})  # total unchanged
    rep = decide_results(before, after, 0.0, 100.0, GateConfig())
    assert rep.regression_drop == 0 and not rep.promote and rep.failed == ["tool:read_text"]
    assert rep.verdict == "reject (tool:read_text)" and "read_text 100 -> 85 (3 of 20 items lost)" in rep.reasons[2]
    one = decide_results(before, _results({"read_text": (20, 19), "detect_faces": (20, 20), NO_TOOL: (200, 191)}), 0, 100, GateConfig(max_tool_drop=1))
    assert one.promote, one.reasons  # one lost item is under tool_min_lost: noise, not a trend
    small = decide_results(before[:10], before[:10], 0, 100, GateConfig())
    assert "note: 10 regression items" in small.reasons[-1] and small.promote


def test_verdict_names_every_failure():
    before = _results({"read_text": (100, 100), NO_TOOL: (100, 100)})
    after = _results({"read_text": (100, 80), NO_TOOL: (100, 100)})
    rep = decide_results(before, after, 50.0, 52.0, GateConfig())
    assert rep.failed == ["regression", "tool:read_text", "learning"] and not rep.promote


def _ex(prompt: str, call: ToolCall | None, label: str = "desirable", i: int = 0) -> Example:
    return Example(prompt=prompt, calls=[call] if call else [], answer="" if call else "no", label=label, feedback_id=i, turn_id=f"t{i}")


def test_poisoning_check_flags_contradictions_of_a_reliable_tool_only():
    rt, df, cc = (ToolCall(name=n, arguments={"image": "image_1"}) for n in ("read_text", "detect_faces", "flip_coin"))
    regression = [(f"read the text in this image {k}", ItemResult(id=f"r{k}", groups=["read_text"], ok=True)) for k in range(6)]
    regression += [(f"count the faces here {k}", ItemResult(id=f"f{k}", groups=["detect_faces"], ok=k < 3)) for k in range(6)]  # 50%: unreliable
    serving = {"read the text in this image please": ["read_text"], "read the text in this image now": ["read_text"],
               "read the text in this image for me": ["read_text"], "count the faces here please": ["detect_faces"]}
    calls = lambda exs: [serving.get(e.prompt, []) for e in exs]  # noqa: E731
    poison = [_ex(p, df, i=i) for i, p in enumerate(list(serving)[:3])]
    rep = poisoning_check(poison, regression, calls, GateConfig())
    assert rep.flagged and len(rep.contradicting) == 3 and rep.reliable == {"read_text": 100.0}
    assert "3 of 3 targets contradict" in rep.reason and "read_text 100%" in rep.reason
    # Thumbs-down on the reliable tool's own call on such prompts contradict it too.
    downs = [_ex(p, rt, "undesirable", i) for i, p in enumerate(list(serving)[:3])]
    assert poisoning_check(downs, regression, calls, GateConfig()).flagged
    # A new tool's prompts are not like any reliable tool's items; an unreliable tool is not defended.
    new = [_ex(f"flip a coin {k}", cc, i=k) for k in range(5)] + [_ex("count the faces here please", rt, i=9)]
    ok = poisoning_check(new, regression, calls, GateConfig())
    assert not ok.flagged and ok.contradicting == [] and ok.probed == 0
    # A few contradictions in a large batch are under the share.
    assert not poisoning_check(poison + new * 3, regression, calls, GateConfig(poison_share=0.25)).flagged


def test_score_cache_roundtrip_and_torn_file(tmp_path):
    cache = ScoreCache(tmp_path)
    res = [ItemResult(id="s/1", groups=["read_text"], ok=True, called=["read_text"])]
    assert cache.get("v0001", "k") is None
    cache.put("v0001", "k", res)
    assert cache.get("v0001", "k") == res and cache.get(None, "k") is None
    (tmp_path / "scores" / "v0001-k.json").write_text("{torn")
    assert cache.get("v0001", "k") is None


def test_avoid_items_score_any_valid_other_output():
    from mmagent.training.scoring import Prediction

    tools = [{"type": "function", "function": {"name": "flip_coin", "parameters": {"type": "object", "properties": {}}}}]
    said = Prediction("x")
    said.texts = ["I cannot do that."]
    assert not _avoids(said, "I cannot do that.", tools)
    called = Prediction("x")
    called.calls = [ToolCall(name="flip_coin", arguments={})]
    assert _avoids(called, "I cannot do that.", tools)
    ghost = Prediction("x")
    ghost.calls = [ToolCall(name="no_such_tool", arguments={})]
    assert not _avoids(ghost, "I cannot do that.", tools)


def test_held_out_thumbs_are_scored_on_what_a_thumb_judged_not_the_models_wording():
    """A ticket's summary is the model's own wording: reworded, the same queue is the same call (a thumbs-up
    kept, a thumbs-down repeated); another queue, or a summary about something else, is not."""
    from mmagent.continual.suites import _keeps, same_calls
    from mmagent.protocol.toolcall import format_calls
    from mmagent.training.scoring import Prediction, SuiteItem

    tools = [{"type": "function", "function": {"name": "open_ticket", "parameters": {"type": "object", "properties": {
        "category": {"type": "string", "enum": ["billing", "technical"]}, "summary": {"type": "string"},
        "image": {"type": "string"}}}}}]
    rated = [ToolCall(name="open_ticket", arguments={"category": "technical", "summary": "the printer will not print"})]

    def pred(category: str, summary: str, **extra) -> Prediction:
        p = Prediction("x")
        p.calls = [ToolCall(name="open_ticket", arguments={"category": category, "summary": summary, **extra})]
        return p

    reworded, other_queue, other_thing = pred("technical", "Printer broken"), pred("billing", "printer broken"), pred("technical", "refund my order")
    assert same_calls(reworded.calls, rated, tools) and not same_calls(other_queue.calls, rated, tools)
    assert not same_calls(other_thing.calls, rated, tools)
    assert not same_calls(pred("technical", "printer", image="image_1").calls, rated, tools)  # another argument set
    image = [ToolCall(name="open_ticket", arguments={"category": "technical", "summary": "x", "image": "image_1"})]
    assert not same_calls([ToolCall(name="open_ticket", arguments={**image[0].arguments, "image": "image_2"})], image, tools)
    keep = SuiteItem(id="fb1", prompt="p", expected=[{"name": "open_ticket", "arguments": {k: [v] for k, v in rated[0].arguments.items()}}],
                     kind="keep")
    assert _keeps(reworded, keep, tools) and not _keeps(other_queue, keep, tools)
    down = format_calls([ToolCall(name="open_ticket", arguments={"category": "billing", "summary": "the printer will not print"})])
    assert not _avoids(other_queue, down, tools)  # the rated-down queue under a reworded summary: the same mistake
    assert _avoids(reworded, down, tools)
    answered = Prediction("x")
    answered.texts = ["I opened it."]
    assert _avoids(answered, down, tools) and not _keeps(answered, keep, tools)


def test_round_learns_only_from_turns_its_model_served(tmp_path):
    import pytest

    from mmagent.agent.log import InteractionLog
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import LearnConfig, LearnEnv, NoNewData, learn
    from mmagent.continual.registry import AdapterRegistry
    from mmagent.feedback import FeedbackStore, record_feedback

    log = InteractionLog(tmp_path / "interactions.sqlite")
    env = LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=S.tiny_tools(), registry=AdapterRegistry(tmp_path / "adapters"),
                   train=lambda job: pytest.fail("must not train"), chat_model=lambda a: None,
                   regression_suite=S.write_suite(tmp_path / "s", [("read it", S.RT, 1)], "reg"), model="mmagent-default")
    for i, p in enumerate(S.COIN):
        log.start_turn(f"t{i}", f"s{i % 3}", p, [], [], S.tiny_tools().names(), "other-model", None, False)
        log.end_turn(f"t{i}", "ok", "no", None, 1, 0)
        record_feedback(env.feedback, log, env.tools, f"t{i}", "down", correct_calls=[S.FC])
    with pytest.raises(NoNewData, match="12 on turns another model or adapter slot served"):
        learn(env, LearnConfig())
    assert len(env.feedback.unused()) == 12  # left for a round of the model that served them


def test_a_slots_round_learns_only_from_the_turns_that_slot_served(tmp_path):
    from mmagent.agent.fake import ScriptedChatModel

    """A routed model (`continual/adapter_slots.py`): turns its open-world adapter (or a version of that slot)
    served wait for the open-world slot's round; the own slot's round learns from the rest, and vice versa."""
    import pytest

    from mmagent.agent.log import InteractionLog
    from mmagent.continual import scenario as S
    from mmagent.continual.learn import LearnConfig, LearnEnv, NoNewData, learn
    from mmagent.continual.registry import AdapterRegistry
    from mmagent.feedback import FeedbackStore, record_feedback

    log = InteractionLog(tmp_path / "interactions.sqlite")
    served = ["open-world", "open-world-v0003"]
    for i, p in enumerate(S.COIN):
        log.start_turn(f"t{i}", f"s{i % 3}", p, [], [], S.tiny_tools().names(), "mmagent-default", served[i % 2], False)
        log.end_turn(f"t{i}", "ok", "no", None, 1, 0)

    def env(slot):
        return LearnEnv(feedback=FeedbackStore(log.path), turns=log, tools=S.tiny_tools(), registry=AdapterRegistry(tmp_path / "adapters"),
                        train=lambda job: pytest.fail(f"must not train: {job.start_adapter}"),
                        chat_model=lambda a: ScriptedChatModel([lambda m: "I can't."] * 99), regression_suite=S.write_suite(tmp_path / "s", [("read it", S.RT, 1)], "reg"), model="mmagent-default",
                        slot=slot, routed=["open-world"])

    for i in range(len(S.COIN)):
        record_feedback(env(None).feedback, log, S.tiny_tools(), f"t{i}", "down", correct_calls=[S.FC])
    with pytest.raises(NoNewData, match="12 on turns another model or adapter slot served"):
        learn(env(None), LearnConfig())
    with pytest.raises(pytest.fail.Exception, match="must not train: open-world"):  # its round trains, from the slot's adapter
        learn(env("open-world"), LearnConfig(poisoning_check=False))
    assert len(env(None).feedback.unused()) == 12  # the killed round marked nothing


def test_the_gate_decodes_as_the_model_serves(tmp_path):
    """A held-out thumbs-down judged a constrained reply: the serving model, scored unconstrained, said
    something else and "avoided" its own mistake. The gate decodes as `Agent` does (constrained where the
    backend can), so the mistake counts; a backend that cannot constrain is scored unconstrained."""
    import json

    from mmagent.continual.suites import run_suite
    from mmagent.protocol.chat import ChatResult
    from mmagent.protocol.toolcall import format_calls

    wrong = ToolCall(name="flip_coin", arguments={})
    tools = [{"type": "function", "function": {"name": "flip_coin", "parameters": {"type": "object", "properties": {}}}}]

    class TwoWays:
        """Calls flip_coin under the grammar, answers in prose without it."""
        def __init__(self, constrains: bool):
            self.constrains_decoding, self.seen = constrains, []

        def chat(self, messages, tools=None, *, constrained=False, **kw):
            self.seen.append(constrained)
            return ChatResult(text="", tool_calls=[wrong]) if constrained else ChatResult(text="Heads, I guess.")

    suite = tmp_path / "heldout.jsonl"
    suite.write_text(json.dumps({"id": "fb1", "prompt": "flip a coin for me", "expected": [], "kind": "avoid",
                                 "avoid": format_calls([wrong]), "tools": tools}) + "\n")
    local, remote = TwoWays(True), TwoWays(False)
    assert [r.ok for r in run_suite(local, suite, tools)] == [False] and set(local.seen) == {True}
    assert [r.ok for r in run_suite(remote, suite, tools)] == [True] and set(remote.seen) == {False}
