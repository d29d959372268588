"""The gate's evaluations on several processes give the results of one process, in the same order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmagent.continual.suites import ItemResult, ScoreCache, run_suite, run_suites
from mmagent.protocol.chat import ChatResult, ToolCall


class CallsIfAsked:
    """A scripted model: calls read_text when the request says "read", answers in prose otherwise."""

    def chat(self, messages, tools=None, **_):
        if "read" in messages[0].content:
            return ChatResult(text="", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})])
        return ChatResult(text="Hello!")


def _suite(tmp_path: Path, n: int = 7) -> Path:
    rows = []
    for i in range(n):
        read = i % 3 == 0
        rows.append({"id": f"it{i}", "prompt": "read it" if read else f"hello {i}", "images": [],
                     "expected": [{"name": "read_text", "arguments": {"image": ["image_1"]}}] if read else [],
                     "kind": "single" if read else "no_tool"})
    path = tmp_path / "s" / "suite.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TOOLS = [{"type": "function", "function": {"name": "read_text", "description": "Reads text.",
                                            "parameters": {"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}}}]


def test_shards_cover_the_suite_once_in_order(tmp_path):
    suite = _suite(tmp_path)
    full = run_suite(CallsIfAsked(), suite, TOOLS, limit=6)
    shards = [run_suite(CallsIfAsked(), suite, TOOLS, limit=6, shard=(k, 3)) for k in range(3)]
    assert [r.id for s in shards for r in s] != [r.id for r in full]  # interleaved, not contiguous
    assert sorted(r.id for s in shards for r in s) == sorted(r.id for r in full) and len(full) == 6
    assert [shards[i % 3][i // 3] for i in range(6)] == full


def test_a_pool_answers_only_what_the_cache_lacks(tmp_path):
    suite, other = _suite(tmp_path), _suite(tmp_path / "b", 4)
    cache = ScoreCache(tmp_path / "reg")
    asked = []

    def pool(suites, tools, known):
        asked.append([str(p) for p, _ in suites])
        return [run_suite(CallsIfAsked(), p, tools, known, limit) for p, limit in suites]

    def no_model():
        raise AssertionError("the pool answers; the round's own model is not loaded")

    first = run_suites(no_model, "v1", [(suite, None), (other, None)], TOOLS, None, cache, pool)
    assert asked == [[str(suite), str(other)]] and all(isinstance(r, ItemResult) for r in first)
    again = run_suites(no_model, "v1", [(suite, None), (other, None)], TOOLS, None, cache, pool)
    assert again == first and len(asked) == 1  # every suite now comes from the cache


def test_worker_processes_score_the_embedded_default_as_one_process(tmp_path):
    """Two worker processes on the shipped regression suite's first items = the round's own evaluation."""
    from mmagent.continual.defaults import default_suites, gate_chat_models, gate_workers
    from mmagent.tools.registry import default_registry

    tools = default_registry()
    schemas, known = tools.schemas(), set(tools.names())
    suites = [(default_suites()[0], 2), (default_suites()[1], 1)]
    alone = [run_suite(gate_chat_models()(None), s, schemas, known, limit) for s, limit in suites]
    pooled = gate_workers(None, 2)(suites, schemas, known)
    assert pooled == alone and [len(r) for r in pooled] == [2, 1]


def test_a_failing_worker_says_why(tmp_path):
    from mmagent.continual.eval_workers import SuiteWorkers

    workers = SuiteWorkers(tmp_path, tmp_path / "no-such-model", "nope", None, False, None, workers=2)
    with pytest.raises(RuntimeError, match="evaluation worker failed"):
        workers([(_suite(tmp_path), None)], TOOLS, None)
