"""The one tool-call format: rendering, formatting, and a parser that survives real model output."""

import json

import pytest

from mmagent.protocol.chat import Message, ToolCall
from mmagent.protocol.toolcall import (
    format_calls,
    format_tool_result,
    parse_tool_calls,
    render_signature,
    render_tool_prompt,
    template_messages,
)

DETECT = {
    "type": "function",
    "function": {
        "name": "detect_objects",
        "description": "Find objects in an image. Returns boxes.",
        "parameters": {
            "type": "object",
            "properties": {
                "image": {"type": "string", "pattern": "^image_[1-9][0-9]*$", "x-artifact": "image"},
                "labels": {"type": "array", "items": {"type": "string"}},
                "threshold": {"type": "number", "default": 0.5},
                "mode": {"enum": ["fast", "accurate"]},
                "seed": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            },
            "required": ["image"],
        },
    },
}


def test_signature_carries_names_types_enums_and_optionality():
    line = render_signature(DETECT)
    assert line == (
        'detect_objects(image: image_id, labels?: list[str], threshold?: float = 0.5, mode?: "fast"|"accurate", '
        "seed?: int|null) - Find objects in an image"
    )


def test_tool_prompt_is_compact_one_line_per_tool():
    tools = [DETECT, {"name": "read_text", "description": "Read text.", "parameters": {"type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}}]
    text = render_tool_prompt(tools)
    assert text.splitlines()[-2:] == [render_signature(DETECT), "read_text(image: str) - Read text"]
    assert "<tool_call>" in text and len(text) < 600


def test_bad_schema_is_a_clear_error():
    with pytest.raises(ValueError, match="not a tool schema"):
        render_tool_prompt([{"description": "no name"}])


def test_format_then_parse_roundtrips():
    calls = [ToolCall(name="read_text", arguments={"image": "image_1"}), ToolCall(name="speak", arguments={"text": "héllo", "n": [1, 2]})]
    text = format_calls(calls)
    assert text.count("<tool_call>") == 2 and "\n" in text
    parsed, errors, prose = parse_tool_calls(text)
    assert [(c.name, c.arguments) for c in parsed] == [(c.name, c.arguments) for c in calls]
    assert errors == [] and prose == ""


def test_prose_around_calls_is_kept_and_calls_extracted():
    text = 'Let me look.\n<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>\nThen I answer.'
    calls, errors, prose = parse_tool_calls(text)
    assert calls[0].name == "read_text" and errors == []
    assert prose == "Let me look.\n\nThen I answer."


@pytest.mark.parametrize(
    "text",
    [
        '```\n<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>\n```',
        '<tool_call>```json\n{"name": "a", "arguments": {"x": 1}}\n```</tool_call>',
        '```json\n{"name": "a", "arguments": {"x": 1}}\n```',
        '<tool_call>{"name": "a", "parameters": {"x": 1}}</tool_call>',
        '<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>',
        '<tool_call>  {"name": "a", "arguments": {"x": 1}}  ',  # cut off before the closing tag
    ],
)
def test_fences_aliases_and_missing_close_are_tolerated(text):
    calls, errors, prose = parse_tool_calls(text)
    assert [(c.name, c.arguments) for c in calls] == [("a", {"x": 1})]
    assert errors == [] and prose == ""


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("<tool_call>{name: a}</tool_call>", "invalid JSON"),
        ("<tool_call></tool_call>", "empty <tool_call>"),
        ('<tool_call>["a"]</tool_call>', "must be a JSON object"),
        ('<tool_call>{"arguments": {}}</tool_call>', "string 'name'"),
        ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "must be a JSON object, got list"),
        ('<tool_call>{"name": "a", "arguments": "nope"}</tool_call>', "not JSON"),
        ('<tool_call>{"name": "a", "argu', "cut off"),
        ('{"name": "a"}</tool_call>', "without a matching"),
    ],
)
def test_garbage_is_reported_not_raised(text, fragment):
    calls, errors, _ = parse_tool_calls(text)
    assert calls == []
    assert len(errors) == 1 and fragment in errors[0]


def test_one_bad_call_does_not_hide_the_good_ones():
    text = '<tool_call>{oops <tool_call>{"name": "b", "arguments": {}}</tool_call>'
    calls, errors, _ = parse_tool_calls(text)
    assert [c.name for c in calls] == ["b"]
    assert errors and errors[0].startswith("tool call 1:")


def test_plain_prose_and_json_answers_are_not_calls():
    assert parse_tool_calls("The sign says STOP.") == ([], [], "The sign says STOP.")
    calls, errors, prose = parse_tool_calls('```json\n{"answer": 42}\n```')
    assert calls == [] and errors == [] and "42" in prose


def test_tool_result_format():
    ok = format_tool_result("read_text", {"text": "STOP"})
    assert ok.startswith("<tool_response>") and json.loads(ok[15:-16]) == {"name": "read_text", "result": {"text": "STOP"}}
    bad = format_tool_result("read_text", error="image_9 does not exist")
    assert '"error": "image_9 does not exist"' in bad
    # the exact text the shipped model was trained on (and the repair note's expected types after the error)
    assert ok == '<tool_response>{"name": "read_text", "result": {"text": "STOP"}}</tool_response>'
    assert bad == '<tool_response>{"name": "read_text", "error": "image_9 does not exist"}</tool_response>'
    assert format_tool_result("add", error="bad a", expected={"a": "integer"}) == (
        '<tool_response>{"name": "add", "error": "bad a", "expected": {"a": "integer"}}</tool_response>')
    assert format_tool_result("add", {"result": 5}, expected={"a": "integer"}) == format_tool_result("add", {"result": 5})


def test_template_messages_put_tools_in_system_and_name_media():
    msgs = [
        Message(role="user", content="What does it say?", images=["image_1"]),
        Message(role="assistant", content="", tool_calls=[ToolCall(name="read_text", arguments={"image": "image_1"})]),
        Message(role="tool", name="read_text", content=format_tool_result("read_text", {"text": "STOP"})),
    ]
    out = template_messages(msgs, [DETECT])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool"]
    assert "detect_objects(" in out[0]["content"]
    assert out[1]["content"] == "[attached: image_1]\nWhat does it say?"
    assert parse_tool_calls(out[2]["content"])[0][0].arguments == {"image": "image_1"}
    own = template_messages([Message(role="system", content="Be brief."), msgs[0]], [DETECT])
    assert own[0]["content"].startswith("Be brief.\n") and len(own) == 2
