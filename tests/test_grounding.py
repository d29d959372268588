"""Argument grounding and value annotation (mmagent/protocol/grounding.py): no model runs."""

from __future__ import annotations

import pytest

from mmagent.protocol.chat import Message, ToolCall
from mmagent.protocol.grounding import annotate_values, annotated, ground_calls, stated_numbers

VET = {"type": "function", "function": {"name": "pets.find_vet", "description": "Find a vet.", "parameters": {
    "type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"},
        "animal": {"type": "string"},
        "species": {"type": "string", "enum": ["dog", "cat", "o3"]},
        "emergency": {"type": "boolean"},
        "notify": {"type": "boolean", "default": True},
        "radius_km": {"type": "number"},
        "limit": {"type": "integer", "default": 5},
        "date": {"type": "string", "format": "date"},
        "when": {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "photo": {"type": "string", "x-artifact": "image"}}}}}


def _ground(request: str, **arguments):
    calls, notes = ground_calls([ToolCall(name="pets.find_vet", arguments=arguments)], [Message(role="user", content=request)], [VET])
    return calls[0].arguments, notes


@pytest.mark.parametrize("text, numbers", [
    ("seven thousand six hundred and eighty-nine kWh", {7689}),
    ("a $2,826 home at 24% for twenty-nine years", {2826, 24, 0.24, 29}),
    ("5k steps on the 3rd, the fifth and the twenty-first", {5, 5000, 3, 21}),
    ("from 4:30 pm", {4, 30, 16}),
    ("on 6 June 2025", {6, 2025}),
])
def test_numbers_are_read_in_digits_words_ordinals_months_and_clock_times(text, numbers):
    assert numbers <= stated_numbers(text)


def test_an_optional_value_the_request_never_states_is_dropped_and_said_so():
    args, notes = _ground("Find me a vet near Hanoi", city="Hanoi", animal="dog", radius_km=10, date="2022-01-01")
    assert args == {"city": "Hanoi"}
    assert len(notes) == 3 and "animal='dog'" in notes[0] and "not in the conversation" in notes[0]


def test_stated_values_stay_whatever_form_the_request_used():
    args, notes = _ground("A vet in Hanoi for my Dog within twelve km on 6 June 2025, between 9 am and noon, tags: senior, calm",
                          city="Hanoi", animal="dog", radius_km=12, date="2025-06-06",
                          when={"start": "09:00", "end": "12:00"}, tags=["senior", "calm"])
    assert notes == [] and args["radius_km"] == 12 and args["when"] == {"start": "09:00", "end": "12:00"}


def test_required_arguments_enum_choices_true_flags_and_artifacts_are_never_dropped():
    args, notes = _ground("help", city="Paris", species="o3", emergency=True, photo="image_1")
    assert args == {"city": "Paris", "species": "o3", "emergency": True, "photo": "image_1"} and notes == []


def test_a_false_flag_or_a_default_value_is_dropped_unless_the_default_differs():
    args, _ = _ground("a vet in Oslo, 5 results", city="Oslo", emergency=False, limit=5, notify=False)
    assert args == {"city": "Oslo", "notify": False}  # notify defaults to true: false changes what the tool does


def test_an_object_with_one_unstated_value_is_dropped_whole():
    args, _ = _ground("a vet in Oslo from 9:00", city="Oslo", when={"start": "09:00", "end": "17:00"})
    assert "when" not in args


def test_tool_results_and_earlier_turns_ground_values_but_the_system_prompt_does_not():
    msgs = [Message(role="system", content="example: city London, animal cat"), Message(role="user", content="find a vet"),
            Message(role="tool", content='{"city": "Bergen"}'), Message(role="user", content="for my cat there")]
    calls, notes = ground_calls([ToolCall(name="pets.find_vet", arguments={"city": "Bergen", "animal": "cat"})], msgs, [VET])
    assert calls[0].arguments == {"city": "Bergen", "animal": "cat"} and notes == []
    calls, _ = ground_calls([ToolCall(name="pets.find_vet", arguments={"city": "x", "animal": "cat"})], msgs[:2], [VET])
    assert calls[0].arguments == {"city": "x"}


def test_a_call_of_an_unknown_tool_is_left_for_the_registry_to_report():
    call = ToolCall(name="nope", arguments={"a": 1})
    assert ground_calls([call], [Message(role="user", content="hi")], [VET]) == ([call], [])


@pytest.mark.parametrize("text, shown", [
    ("for seven thousand six hundred and eighty-nine kWh", "for seven thousand six hundred and eighty-nine (7689) kWh"),
    ("charge from 4:30 pm to 11am.", "charge from 4:30 pm (16:30) to 11am (11:00)."),
    ("weighs eighty-two kilos", "weighs eighty-two (82) kilos"),
    ("book that one", "book that one"),
    ("at 13:00 with 3 kids", "at 13:00 with 3 kids"),
    ("a $400,000 loan", "a $400,000 (400000) loan"),
    ("tops out at 650k.", "tops out at 650k (650000)."),
    ("a 5 km run, 3 m tall, 1,2,3", "a 5 km run, 3 m tall, 1,2,3"),
])
def test_the_model_is_shown_digits_beside_spelled_out_numbers_12_hour_times_and_thousands(text, shown):
    assert annotate_values(text) == shown


def test_only_user_turns_are_annotated_and_the_messages_are_copies():
    msgs = [Message(role="system", content="twelve"), Message(role="user", content="twelve eggs")]
    shown = annotated(msgs)
    assert [m.content for m in shown] == ["twelve", "twelve (12) eggs"] and msgs[1].content == "twelve eggs"


def test_sizes_ids_and_signed_coordinates_state_their_numbers():
    assert {96, 128, 1084, -26.13, 142.32} <= stated_numbers("resize to 96x128 for MTR-1084 at -26.13, 142.32")
    assert -1084 not in stated_numbers("MTR-1084")
    args, _ = _ground("vets within 96x128 km of Oslo", city="Oslo", radius_km=128)
    assert args["radius_km"] == 128


@pytest.mark.parametrize("on", [True, False])
def test_the_composed_backend_shows_annotated_turns_and_grounds_its_calls(monkeypatch, on):
    """Wiring on a tiny random-init MM-LLM: what the model is shown (`MMLLM.build_inputs`, which training
    renders through too), and the parsed calls it returns (the parse is replaced by a call with one
    stated and one invented optional argument)."""
    from tiny_mmllm import tiny_mmllm

    from mmagent.backends.composed import ComposedChatModel
    from mmagent.protocol import toolcall

    if not on:
        monkeypatch.setenv("MMAGENT_ANNOTATE_VALUES", "0")
        monkeypatch.setenv("MMAGENT_GROUND_ARGUMENTS", "0")
    model = ComposedChatModel(tiny_mmllm(), "tiny")
    from mmagent.model import mm_prompt

    shown: list[str] = []
    render = mm_prompt.render_conversation
    monkeypatch.setattr(mm_prompt, "render_conversation", lambda tok, msgs, *a: shown.append(msgs[-1].content) or render(tok, msgs, *a))
    invented = ToolCall(name="pets.find_vet", arguments={"city": "Oslo", "radius_km": 12, "animal": "dog"})
    monkeypatch.setattr(toolcall, "parse_tool_calls", lambda text: ([invented], [], ""))
    result = model.chat([Message(role="user", content="a vet in Oslo within twelve km")], [VET], max_new_tokens=4)
    assert shown == ["a vet in Oslo within twelve (12) km" if on else "a vet in Oslo within twelve km"]
    if on:
        assert result.tool_calls[0].arguments == {"city": "Oslo", "radius_km": 12} and "animal='dog'" in result.dropped_arguments[0]
    else:
        assert result.tool_calls == [invented] and result.dropped_arguments == []


@pytest.mark.parametrize("parameters", ["not a schema", {"properties": ["city"], "required": "city"},
                                        {"properties": {"when": {"properties": "x"}}}])
def test_a_malformed_schema_leaves_the_call_for_the_registry_to_report(parameters):
    tool = {"type": "function", "function": {"name": "odd", "parameters": parameters}}
    call = ToolCall(name="odd", arguments={"city": "Oslo", "when": {"start": "09:00"}})
    calls, _ = ground_calls([call], [Message(role="user", content="hi")], [tool])
    assert calls[0].name == "odd"  # no exception: the reply and the session go on
