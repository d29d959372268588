"""Hostile inputs to the tool layer: `mmagent tools call` in real processes, malformed model
output fed to the parser and through agent turns, and broken `tools_modules`.

Every test counts the inputs it tried and the crashes it saw (a crash: an exception escaping,
a traceback, an exit code other than the contract's, a turn without a final status). Run with
`-s` to see the counts; every crash count must be 0.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from agent_fixtures import add, boom, call, make_agent
from mmagent.tools.base import ToolContext
from mmagent.tools.edit import crop_image, resize_image
from mmagent.tools.registry import NO_TIMEOUT, TimeoutSettingError, ToolModuleError, ToolRegistry, custom_tools
from PIL import Image

from mmagent.media.artifacts import ArtifactStore
from mmagent.protocol.chat import ToolCall
from mmagent.protocol.toolcall import MAX_JSON_DEPTH, json_nesting_exceeds, loads_json, parse_tool_calls, value_nesting_exceeds

COUNTS: Counter[str] = Counter()
DEEP = 100_000  # nesting that made `json` raise RecursionError before the bound


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\nreliability counts: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))


def _mmagent(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "MMAGENT_TOOLS_MODULES"}
    full.update(MMAGENT_HOME=str(home), OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "mmagent.cli", *args], capture_output=True, text=True, env=full, timeout=120)


def _one_error_line(p: subprocess.CompletedProcess) -> str:
    """The contract for an error: no traceback, exactly one `error: ...` line on stderr."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr and len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# `mmagent tools call` in real processes
# ---------------------------------------------------------------------------------------------

BOX_OUT = '{"box": {"x0": 50, "y0": 0, "x1": 60, "y1": 10}}'  # the image is 40x30
CLI_CASES = [
    # (id, extra args, needs the 40x30 image attached, stderr must contain)
    ("bad-json", ["crop_image", "--args", "{not json"], False, "not valid JSON"),
    ("deep-json-unclosed", ["crop_image", "--args", "[" * DEEP], False, f"nested more than {MAX_JSON_DEPTH} levels"),
    ("deep-json-closed", ["crop_image", "--args", "[" * (DEEP // 2) + "]" * (DEEP // 2)], False, f"nested more than {MAX_JSON_DEPTH} levels"),
    ("deep-json-in-object", ["crop_image", "--args", '{"box": ' + '{"x0": ' * 10_000], False, f"nested more than {MAX_JSON_DEPTH} levels"),
    ("huge-int", ["crop_image", "--args", '{"x": ' + "9" * 5000 + "}"], False, "not valid JSON"),
    ("args-not-object", ["crop_image", "--args", "[1, 2]"], False, "arguments must be a JSON object"),
    ("unknown-tool", ["no_such_tool", "--args", "{}"], False, "unknown tool 'no_such_tool'"),
    ("wrong-types", ["crop_image", "--args", '{"image": 5, "box": "big"}'], False, "validation: invalid arguments for crop_image"),
    ("missing-artifact", ["crop_image", "--args", '{"image": "image_9", "box": {"x0": 0, "y0": 0, "x1": 1, "y1": 1}}'], False, "image_9"),
    ("missing-image-file", ["crop_image", "--image", "/nonexistent/missing.png"], False, "no such file"),
    ("timeout-zero", ["crop_image", "--timeout", "0"], False, "--timeout must be a positive number"),
    ("timeout-negative", ["crop_image", "--timeout", "-5"], False, "--no-timeout"),
    ("timeout-nan", ["crop_image", "--timeout", "nan"], False, "--timeout must be a positive number"),
    ("timeout-and-no-timeout", ["crop_image", "--timeout", "3", "--no-timeout"], False, "not both"),
    ("box-outside-image", ["crop_image", "--args", BOX_OUT], True, "40x30 pixels"),
    ("box-reversed", ["crop_image", "--args", '{"box": {"x0": 9, "y0": 0, "x1": 2, "y1": 10}}'], True, "40x30 pixels"),
]


@pytest.fixture()
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.new("RGB", (40, 30), "green").save(path)
    return path


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_tools_call_hostile_input_is_one_stderr_line_and_exit_2(case, tmp_path, picture):
    _id, args, attach, expect = case
    p = _mmagent("tools", "call", *args, *(["--image", str(picture)] if attach else []), home=tmp_path)
    COUNTS["cli_inputs"] += 1
    COUNTS["cli_crashes"] += p.returncode != 2 or "Traceback" in p.stderr
    line = _one_error_line(p)
    assert p.returncode == 2 and expect in line, (p.returncode, line)
    # stdout keeps only the result: nothing here but the attachment note (no call result exists)
    assert p.stdout.strip() in ("", "attached: image_1"), p.stdout


def test_tools_call_json_error_is_the_result_object_on_stdout_and_a_line_on_stderr(tmp_path, picture):
    p = _mmagent("tools", "call", "crop_image", "--image", str(picture), "--args", BOX_OUT, "--json", home=tmp_path)
    COUNTS["cli_inputs"] += 1
    COUNTS["cli_crashes"] += p.returncode != 2
    doc = json.loads(p.stdout)  # stdout is exactly one JSON document
    assert p.returncode == 2 and doc["ok"] is False and doc["error_kind"] == "validation" and doc["attached"] == ["image_1"]
    assert "40x30" in doc["error"] and "validation: " in _one_error_line(p)
    unknown = _mmagent("tools", "call", "nope", "--json", home=tmp_path)
    COUNTS["cli_inputs"] += 1
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["error_kind"] == "unknown_tool" and "unknown tool" in _one_error_line(unknown)
    bad_args = _mmagent("tools", "call", "crop_image", "--args", "{", "--json", home=tmp_path)  # before any call: stderr only
    COUNTS["cli_inputs"] += 1
    assert bad_args.returncode == 2 and bad_args.stdout == "" and "not valid JSON" in _one_error_line(bad_args)


def test_tools_call_success_prints_only_the_result_and_no_timeout_is_explicit(tmp_path, picture):
    box = '{"box": {"x0": 30, "y0": 20, "x1": 99, "y1": 99}}'  # partly outside: clipped, not refused
    p = _mmagent("tools", "call", "crop_image", "--image", str(picture), "--args", box, "--no-timeout", "--json", home=tmp_path)
    COUNTS["cli_inputs"] += 1
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
    assert json.loads(p.stdout)["output"] == {"image": "image_2", "width": 10, "height": 10}


TOOLS_MODULES = [
    # (id, file name, source, stderr must contain)
    ("sys-exit-0", "exit_tools.py", "import sys\nsys.exit(0)\n", "SystemExit(0)"),
    ("raise-systemexit", "bare_exit_tools.py", "raise SystemExit\n", "SystemExit(None)"),
    ("syntax-error", "broken_tools.py", "def oops(:\n    pass\n", "SyntaxError"),
    ("no-tools", "empty_tools.py", "import os\nX = 1\n", "defines no tool"),
    ("raises", "raising_tools.py", "raise RuntimeError('first line\\nsecond line')\n", "RuntimeError: first line second line"),
    ("builtin-name", "clash_tools.py",
     "from mmagent.tools import tool\n@tool\ndef crop_image(x: int) -> int:\n    '''Shadows a built-in.\n\n    Args:\n        x: X.\n    '''\n    return x\n",
     "built-in tool's name"),
]


@pytest.mark.parametrize("case", TOOLS_MODULES, ids=[c[0] for c in TOOLS_MODULES])
def test_a_broken_tools_module_is_one_line_naming_it_and_exit_2(case, tmp_path):
    _id, fname, source, expect = case
    module = tmp_path / fname
    module.write_text(source)
    p = _mmagent("tools", "call", "crop_image", "--args", "{}", home=tmp_path, MMAGENT_TOOLS_MODULES=json.dumps([str(module)]))
    COUNTS["cli_inputs"] += 1
    COUNTS["cli_crashes"] += p.returncode != 2 or "Traceback" in p.stderr
    line = _one_error_line(p)
    assert p.returncode == 2 and fname in line and expect in line, (p.returncode, line)
    assert p.stdout == ""


def test_a_dotted_tools_module_that_exits_is_a_tool_module_error(tmp_path, monkeypatch):
    (tmp_path / "exiting_pkg_mod.py").write_text("raise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ToolModuleError, match=r"'exiting_pkg_mod' failed to import: it raised SystemExit\(3\)"):
        custom_tools(["exiting_pkg_mod"])
    assert "exiting_pkg_mod" not in sys.modules
    (tmp_path / "interrupt_tools.py").write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stays Ctrl-C
        custom_tools([str(tmp_path / "interrupt_tools.py")])
    COUNTS["module_inputs"] += 2


# ---------------------------------------------------------------------------------------------
# the registry: run-time validation errors, nesting, timeouts
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(artifacts=ArtifactStore(tmp_path / "a", "t"), session="t")


def test_crop_box_outside_the_image_is_a_validation_error_with_the_size(ctx):
    reg = ToolRegistry([crop_image, resize_image])
    src = ctx.artifacts.add_image(Image.new("RGB", (40, 30))).id
    for box in ({"x0": 50, "y0": 0, "x1": 60, "y1": 10}, {"x0": 0, "y0": 30, "x1": 10, "y1": 40}, {"x0": 40, "y0": 30, "x1": 41, "y1": 31}):
        r = reg.call("crop_image", {"image": src, "box": box}, ctx)
        assert r.error_kind == "validation" and "40x30 pixels" in r.error and r.details["errors"][0]["field"] == "box", r.error
        assert "Call it again" in r.error and r.details["schema"]
    r = reg.call("crop_image", {"image": src, "box": {"x0": 9, "y0": 0, "x1": 2, "y1": 10}}, ctx)  # x1 <= x0: schema-level
    assert r.error_kind == "validation" and "x1 > x0" in r.error and "image_1 is 40x30 pixels" in r.error
    assert r.details["image_sizes"] == {"image_1": [40, 30]}
    r = reg.call("resize_image", {"image": src, "width": 4000, "height": 4000, "keep_aspect": True}, ctx)
    assert r.ok  # fits inside 4096
    r = reg.call("resize_image", {"image": src}, ctx)
    assert r.error_kind == "validation" and "give width, height or both" in r.error
    COUNTS["registry_inputs"] += 6


def test_deep_or_cyclic_arguments_are_validation_errors(ctx):
    reg = ToolRegistry([add, crop_image])
    deep: object = 1
    for _ in range(DEEP):
        deep = [deep]
    cyclic: dict = {}
    cyclic["a"] = cyclic
    shared: list = []
    for _ in range(40):  # 2**40 paths, 40 objects: walked once each
        shared = [shared, shared]
    for name, args in [("add", {"a": deep, "b": 1}), ("add", cyclic), ("crop_image", {"image": "image_1", "box": deep}),
                       ("add", {"a": {"x": deep}})]:
        r = reg.call(name, args, ctx)
        assert r.error_kind == "validation" and f"more than {MAX_JSON_DEPTH} levels" in r.error, r.error
    r = reg.call("add", {"a": shared, "b": 1}, ctx)
    assert r.error_kind == "validation" and "a:" in r.error
    COUNTS["registry_inputs"] += 5


def test_nesting_helpers_bound_exactly_at_the_limit():
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_nesting_exceeds(ok) is None and loads_json(ok) is not None
    assert json_nesting_exceeds("[" + ok + "]") == MAX_JSON_DEPTH
    assert json_nesting_exceeds('["' + "[" * 1000 + '"]') is None  # brackets inside strings do not count
    assert json_nesting_exceeds('["\\"' + "[" * 1000 + '"]') is None  # nor after an escaped quote
    assert json_nesting_exceeds("[] " + "[" * 1000) is None  # text after the first value does not count
    with pytest.raises(ValueError, match="nested more than"):
        loads_json("{" * DEEP)
    with pytest.raises(ValueError):
        loads_json('{"a": ' + "1" * 5000 + "}")
    v: list = []
    for _ in range(MAX_JSON_DEPTH - 1):
        v = [v]
    assert not value_nesting_exceeds(v) and value_nesting_exceeds([v])


def test_timeouts_refuse_zero_negative_and_nan(ctx):
    reg = ToolRegistry([add])
    for bad in (0, 0.0, -1, -0.5, math.nan, True, "5"):
        with pytest.raises(TimeoutSettingError, match="positive number of seconds"):
            reg.call("add", {"a": 1, "b": 2}, ctx, timeout_s=bad)
    for bad in (0, -3):
        with pytest.raises(TimeoutSettingError):
            ToolRegistry([add], default_timeout_s=bad)
    assert reg.call("add", {"a": 1, "b": 2}, ctx, timeout_s=NO_TIMEOUT).output == {"result": 3}
    assert ToolRegistry([add], default_timeout_s=None).call("add", {"a": 1, "b": 2}, ctx).ok
    COUNTS["registry_inputs"] += 11


# ---------------------------------------------------------------------------------------------
# malformed model output: the parser and whole agent turns
# ---------------------------------------------------------------------------------------------

GOOD = call("add", a=1, b=2)
MALFORMED = [
    "",
    "   \n\t  ",
    "<tool_call>",
    "</tool_call>",
    "<tool_call></tool_call>",
    "<tool_call>{oops</tool_call>",
    '<tool_call>{"name": "add", "arguments": {"a": 2, "b": }}</tool_call>',
    '<tool_call>{"arguments": {"a": 1, "b": 2}}</tool_call>',
    '<tool_call>{"name": 42, "arguments": {}}</tool_call>',
    '<tool_call>{"name": "", "arguments": {}}</tool_call>',
    "<tool_call>[1, 2, 3]</tool_call>",
    '<tool_call>"just a string"</tool_call>',
    '<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>',
    '<tool_call>{"name": "add", "arguments": "{\\"a\\": 1"}</tool_call>',
    '<tool_call>{"name": "add", "arguments": "' + "[" * 5000 + '"}</tool_call>',  # deep JSON inside a JSON string
    "<tool_call>" + "[" * DEEP,  # deep and cut off
    "<tool_call>" + '{"a": ' * 20_000 + "1" + "}" * 20_000 + "</tool_call>",  # deep and valid
    '<tool_call>{"name": "add", "arguments": {"a": ' + "[" * 100 + "]" * 100 + ', "b": 1}}</tool_call>',  # just over
    "```json\n" + '{"name": "add", "arguments": ' + "[" * DEEP + "\n```",  # fenced and deep
    '```json\n{"name": "add", "arguments": 5}\n```',  # fenced, arguments not an object
    '```json\n{"name": "add", "arguments": {"a": 1, "b": "x"}, "id": []}\n```',
    '<tool_call>{"name": "add", "arguments": {"a": ' + "9" * 5000 + ', "b": 1}}</tool_call>',  # int over 4300 digits
    '```json\n{"name": "add", "arguments": {"a": ' + "9" * 5000 + "}}\n```",
    '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": "two", "b": 3}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": NaN, "b": Infinity}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": "\\ud800", "b": 1}}</tool_call>',  # lone surrogate
    '<tool_call>{"name": "add\\u0000", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": null, "id": 7}</tool_call>',
    "<tool_call><tool_call><tool_call>" + '{"name": "add"',
    '</tool_call>{"name": "add", "arguments": {}}<tool_call>',
    '<tool_call>```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}',
    "```" * 1001,
    '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}} }}]]] trailing</tool_call>',
    "\x00\x01<tool_call>\x00\x7f</tool_call>\x1b[31m",
    '<tool_call>{"name": "boom", "arguments": {"reason": "hostile"}}</tool_call>',
    "<tool_call>" + '"' * 10_000 + "</tool_call>",
    GOOD + "\\" * 1000,
    GOOD * 20,  # many calls in one step
    "word " * 50_000,  # a huge plain answer
    "prose \ud800 with a lone surrogate " + GOOD,
]


def test_parse_tool_calls_never_raises_on_malformed_output():
    tried = crashes = 0
    for text in MALFORMED + [t[: len(t) // 2] for t in MALFORMED] + [t + t for t in MALFORMED[:20]]:
        tried += 1
        try:
            calls, errors, prose = parse_tool_calls(text)
            assert isinstance(prose, str) and all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in calls)
            assert all(isinstance(e, str) and e for e in errors)
        except Exception as err:  # noqa: BLE001 - counted, then reported below
            crashes += 1
            print(f"crash on {text[:80]!r}: {type(err).__name__}: {err}")
    COUNTS["parse_inputs"] += tried
    COUNTS["parse_crashes"] += crashes
    print(f"\nparse_tool_calls: {tried} inputs tried, {crashes} crashes")
    assert crashes == 0


@pytest.mark.parametrize("text", [
    "<tool_call>" + "[" * DEEP, "<tool_call>" + '{"a": ' * 20_000 + "1" + "}" * 20_000 + "</tool_call>",
    '<tool_call>{"name": "add", "arguments": "' + "{" * 5000 + '"}</tool_call>', "```json\n" + '{"name": "add", "arguments": ' + "[" * DEEP + "\n```",
], ids=["unclosed", "closed", "in-a-string", "fenced"])
def test_deep_json_is_a_parse_error_naming_the_limit(text):
    calls, errors, _prose = parse_tool_calls(text)
    assert calls == [] and len(errors) == 1 and f"nested more than {MAX_JSON_DEPTH} levels" in errors[0], errors


def test_deep_json_gets_the_repair_message_and_the_turn_goes_on(tmp_path):
    agent = make_agent(tmp_path, ["<tool_call>" + "[" * DEEP + "</tool_call>", GOOD, "It is 3."], tools=[add])
    r = agent.run("1+2?")
    assert (r.status, r.answer) == ("ok", "It is 3.") and [c.result for c in r.calls] == [{"result": 3}]
    repair = agent.model.seen[1][-1]
    assert repair.role == "tool" and repair.name == "invalid_call" and f"nested more than {MAX_JSON_DEPTH} levels" in repair.content


class _Turns:
    """A scripted model output that replays this turn's outputs (the last one repeats)."""

    def __init__(self) -> None:
        self.outputs: list[str] = []
        self.i = 0

    def start(self, *outputs: str) -> None:
        self.outputs, self.i = list(outputs), 0

    def __call__(self, _messages) -> str:
        out = self.outputs[min(self.i, len(self.outputs) - 1)]
        self.i += 1
        return out


def test_malformed_output_through_agent_turns_always_ends_with_a_status(tmp_path):
    script = _Turns()
    agent = make_agent(tmp_path, [script] * 10_000, tools=[add, boom], max_steps=3, max_repairs=1)
    tried = crashes = 0
    statuses: Counter[str] = Counter()
    for i, text in enumerate(MALFORMED):
        session = f"fuzz-{i}"
        tried += 1
        try:
            script.start(text)  # the model repeats the bad output at every step of the turn
            r = agent.run("What is 1 + 2?", session=session)
            statuses[r.status] += 1
            assert r.status in ("ok", "error", "step_limit"), r.status
            assert r.status == "ok" or r.error
            # the scripted model cannot fail: "the model failed" here means the parser raised inside it
            assert not (r.error or "").startswith("the model failed"), r.error
            script.start(GOOD, "It is 3.")  # the same session takes the next turn normally
            nxt = agent.run("And now?", session=session)
            assert (nxt.status, nxt.answer, [c.ok for c in nxt.calls]) == ("ok", "It is 3.", [True]), (nxt.status, nxt.error)
        except Exception as err:  # noqa: BLE001 - counted, then reported below
            crashes += 1
            print(f"crash on {text[:80]!r}: {type(err).__name__}: {err}")
    agent.close()
    COUNTS["agent_inputs"] += tried
    COUNTS["agent_turns"] += 2 * tried
    COUNTS["agent_crashes"] += crashes
    print(f"\nagent turns: {tried} malformed outputs ({2 * tried} turns), {crashes} crashes, statuses {dict(statuses)}")
    assert crashes == 0 and set(statuses) <= {"ok", "error", "step_limit"}
