"""Schema-guided decoding: whatever the model wants to write, every call parses, names a real tool
and carries arguments of the right types. A tiny byte-level BPE tokenizer and a tiny random Llama
are built in-process (no hub, no embedded model)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from mmagent.protocol.constrained import ToolCallGrammar, tool_call_lark, tool_call_processor
from mmagent.protocol.toolcall import parse_tool_calls


class ReadText(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    image: str = Field(max_length=8)


class Detect(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    image: str = Field(max_length=8)
    mode: Literal["fast", "accurate"] = "fast"
    top_k: int = Field(default=3, ge=1, le=20)
    labels: list[Annotated[str, Field(max_length=6)]] = Field(default_factory=list, max_length=2)
    draw: bool = False


# Strings, numbers and arrays are bounded so that a random walk through the grammar must end.
MODELS = {"read_text": ReadText, "detect_objects": Detect}
TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": m.model_json_schema()}} for n, m in MODELS.items()]


@pytest.fixture(scope="module")
def tok():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ['<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>',
              '{"name": "detect_objects", "arguments": {"mode": "fast", "top_k": 3, "labels": ["cat"], "draw": true}}',
              "Let me check the picture. The sign says STOP. Hello world!"] * 10
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def assert_valid(text: str, *, allow_cut: bool = False) -> list:
    calls, errors, _ = parse_tool_calls(text)
    if allow_cut and errors:  # only the last call may be cut off by the token budget
        assert len(errors) == 1 and "cut off" in errors[0], errors
    else:
        assert errors == [], (text, errors)
    for call in calls:
        assert call.name in MODELS, text
        MODELS[call.name].model_validate(call.arguments)  # strict: wrong types raise
    return calls


def drive(tok, proc, intent: str, steps: int = 160, seed: int = 0) -> str:
    """A decode loop whose 'model' wants to write `intent` (token by token) and random noise after;
    the processor has the last word."""
    gen = torch.Generator().manual_seed(seed)
    ids = tok("<|endoftext|>", return_tensors="pt")["input_ids"]  # a 1-token prompt
    want = tok(intent)["input_ids"] + [tok.eos_token_id]
    for step in range(steps):
        scores = torch.randn(1, len(tok), generator=gen)
        if step < len(want):
            scores[0, want[step]] += 100.0
        else:
            scores[0, tok.eos_token_id] += 5.0  # drift toward stopping
        nxt = int(proc(ids, scores).argmax())
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        if nxt == tok.eos_token_id:
            break
    return tok.decode(ids[0, 1:], skip_special_tokens=True)


@pytest.mark.parametrize(
    "intent",
    [
        'Let me look. <tool_call>{"name": "read_txt", "arguments": {"image": "image_1"}}</tool_call>',  # unknown tool
        '<tool_call>{"name": "detect_objects", "arguments": {"image": 7, "top_k": "three"}}</tool_call>',  # wrong types
        '<tool_call>{"name": "read_text", "arguments": {"image": "image_1", "bogus": 1}}</tool_call>',  # extra arg
        '<tool_call>{"name": "read_text", "arguments": {}}</tool_call>',  # missing required
        '<tool_call> {"name" : "read_text", "arguments":{"image":"a"}}</tool_call>',  # off-format whitespace
        "<tool_call>garbage garbage garbage",
    ],
)
def test_adversarial_intent_still_yields_valid_calls(tok, intent):
    text = drive(tok, tool_call_processor(tok, TOOLS), intent)
    assert len(assert_valid(text)) >= 1


def test_prose_is_untouched_in_auto_mode(tok):
    text = drive(tok, tool_call_processor(tok, TOOLS), "The sign says STOP.")
    assert text == "The sign says STOP."


def test_exact_training_format_passes_unchanged(tok):
    intent = 'Sure. <tool_call>{"name": "detect_objects", "arguments": {"image": "image_1", "top_k": 5, "labels": ["cat", "dog"]}}</tool_call>'
    assert drive(tok, tool_call_processor(tok, TOOLS), intent) == intent


@pytest.mark.parametrize("intent", ['<tool_call>{"name": "read_text", "arguments": {"image": "image_1"}}</tool_call>',
                                    "Let me look. <tool_call>garbage", "The sign says STOP."])
def test_no_tools_means_prose_only(tok, intent):
    # What tool retrieval asks for when no offered tool fits: whatever the model wants, no call opens.
    text = drive(tok, tool_call_processor(tok, []), intent)
    calls, errors, _ = parse_tool_calls(text)
    assert calls == [] and errors == [] and "<tool_call>" not in text and "</tool_call>" not in text, text
    if "<" not in intent:
        assert text == intent


def test_required_mode_forbids_prose(tok):
    text = drive(tok, tool_call_processor(tok, TOOLS, mode="required"), "No call from me.")
    assert text.startswith("<tool_call>") and len(assert_valid(text)) >= 1


def test_hf_generate_on_a_tiny_random_llama(tok):
    from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok) + 13, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()  # vocab padded past the tokenizer's: extra ids must stay masked
    prompt = tok(["Read it:", "Read it:"], return_tensors="pt")
    n_calls = 0
    for seed in range(4):
        torch.manual_seed(seed)
        proc = tool_call_processor(tok, TOOLS, mode="required", batch_size=2)
        out = model.generate(**prompt, logits_processor=LogitsProcessorList([proc]), do_sample=True,
                             temperature=1.5, max_new_tokens=80, pad_token_id=tok.eos_token_id)
        for row in out[:, prompt["input_ids"].shape[1]:]:
            assert int(row.max()) < len(tok)
            n_calls += len(assert_valid(tok.decode(row, skip_special_tokens=True), allow_cut=True))
    assert n_calls >= 4


def test_grammar_is_compiled_once_per_tokenizer_and_tools(tok):
    a = tool_call_processor(tok, TOOLS)
    b = tool_call_processor(tok, TOOLS)
    assert a.grammar is b.grammar and a.matchers[0] is not b.matchers[0]


def test_bad_inputs_are_clear(tok):
    with pytest.raises(ValueError, match="at least one tool"):
        tool_call_lark([], mode="required")
    with pytest.raises(ValueError, match="mode must be"):
        tool_call_lark(TOOLS, mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not compile"):
        ToolCallGrammar(tok, [{"name": "x", "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}}])
    proc = tool_call_processor(tok, TOOLS)
    with pytest.raises(ValueError, match="batch 1"):
        proc(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, len(tok)))


class Say(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    text: str  # unbounded: a looping model never closes it on its own
    tags: list[str]


SAY = [{"type": "function", "function": {"name": "say", "description": "say", "parameters": Say.model_json_schema()}}]


@pytest.mark.parametrize("budget", [48, 64])
@pytest.mark.parametrize("mode", ["auto", "required"])
def test_calls_close_before_the_budget_runs_out(tok, budget, mode):
    loop = '<tool_call>{"name": "say", "arguments": {"text": "' + "hello world " * 40
    text = drive(tok, tool_call_processor(tok, SAY, mode=mode, max_new_tokens=budget), loop, steps=budget)
    calls, errors, _ = parse_tool_calls(text)
    assert errors == [] and len(calls) == 1, text
    Say.model_validate(calls[0].arguments)  # the missing required `tags` was forced in, too
    cut = drive(tok, tool_call_processor(tok, SAY, mode=mode), loop, steps=budget)  # no budget given
    assert "cut off" in parse_tool_calls(cut)[1][0]


class Box(BaseModel):
    x0: int
    y0: int
    x1: int
    y1: int


class Crop(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    image: str
    box: Box


CROP = [{"type": "function", "function": {"name": "crop", "description": "crop", "parameters": Crop.model_json_schema()}}]


def test_a_call_that_fits_the_budget_is_not_closed_early(tok):
    """Winding down starts from what the open call still needs (missing arguments, open brackets,
    the closing tag), not from the size of a whole call: a crop whose box was copied from a detector
    used to come back with `"y1": 13` instead of 135 when the call used most of the budget."""
    intent = '<tool_call>{"name": "crop", "arguments": {"image": "image_1", "box": {"x0": 67, "y0": 45, "x1": 157, "y1": 135}}}</tool_call>'
    budget = len(tok(intent)["input_ids"]) + 12  # room to spare, but less than a second whole call
    text = drive(tok, tool_call_processor(tok, CROP, max_new_tokens=budget), intent, steps=budget)
    calls, errors, _ = parse_tool_calls(text)
    assert errors == [] and calls[0].arguments["box"] == {"x0": 67, "y0": 45, "x1": 157, "y1": 135}, text


def test_no_call_opens_when_the_shortest_one_cannot_fit(tok):
    proc = tool_call_processor(tok, SAY, max_new_tokens=20)
    assert proc.grammar.min_call_tokens()["say"] > 20  # this tiny tokenizer spends many tokens on a call
    text = drive(tok, proc, "Well. <tool_call>{", steps=20)
    assert "<tool_call>" not in text and parse_tool_calls(text)[1] == []


# -- open-world schemas: whatever OpenAI / MCP schemas a user brings ---------------------------------

WEATHER = {"type": "function", "function": {"name": "weather.get-current", "description": "Current weather.", "parameters": {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 8, "examples": ["Paris"]},
        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "at": {"type": "object", "properties": {"lat": {"type": "integer", "minimum": -90, "maximum": 90},
                                                "lon": {"type": "integer", "minimum": -180, "maximum": 180}}, "required": ["lat", "lon"]},
        "fields": {"type": "array", "items": {"type": "string", "enum": ["temp", "wind"]}, "maxItems": 2, "default": ["temp"]},
        "alerts": {"type": "boolean"},
    },
    "required": ["city"]}}}
MCP_READ = {"name": "fs.read-file", "description": "Reads a file.", "inputSchema": {
    "type": "object", "properties": {"path": {"type": "string", "maxLength": 8}}, "required": ["path"]}}
OPEN_WORLD = [WEATHER, MCP_READ]


def assert_valid_for(text: str, tools: list) -> list:
    """Every call parses and passes the registry's validation of its schema (SchemaTool: strict
    JSON types, enums, bounds, closed nested objects): the grammar never writes what the
    validator refuses."""
    from mmagent.tools import ToolContext, ToolRegistry

    reg = ToolRegistry(tools)
    calls, errors, _ = parse_tool_calls(text)
    assert errors == [], (text, errors)
    for c in calls:
        assert c.name in reg, text
        assert isinstance(reg.validate(c.name, c.arguments, ToolContext(artifacts=None)), dict), (text, c)
    return calls


@pytest.mark.parametrize("intent", [
    '<tool_call>{"name": "weather_get_current", "arguments": {"city": "Paris"}}</tool_call>',  # the name without dots/dashes
    '<tool_call>{"name": "weather.get-current", "arguments": {"city": "Paris", "unit": "kelvin"}}</tool_call>',  # not in the enum
    '<tool_call>{"name": "weather.get-current", "arguments": {"city": "Paris", "at": {"lat": 1, "lon": 2, "alt": 3}}}</tool_call>',  # nested extra
    '<tool_call>{"name": "weather.get-current", "arguments": {"city": "Paris", "days": "3", "alerts": "yes"}}</tool_call>',  # types
    '<tool_call>{"name": "weather.get-current", "arguments": {"city": "Paris", "fields": ["rain", "temp", "wind"]}}</tool_call>',
    '<tool_call>{"name": "weather.get-current", "arguments": {"unit": "f"}}</tool_call>',  # the required city left out
    '<tool_call>{"name": "fs.read-file", "arguments": {"file": "a.txt"}}</tool_call>',  # MCP: a wrong argument name
])
def test_any_openai_or_mcp_schema_still_yields_valid_calls(tok, intent):
    for mode in ("auto", "required"):
        text = drive(tok, tool_call_processor(tok, OPEN_WORLD, mode=mode), intent)
        assert len(assert_valid_for(text, OPEN_WORLD)) >= 1


@pytest.mark.parametrize("intent", [
    'Checking. <tool_call>{"name": "weather.get-current", "arguments": {"city": "Oslo", "unit": "f", "days": 3, "at": {"lat": 59, "lon": 10}, '
    '"fields": ["temp", "wind"], "alerts": true}}</tool_call>',
    '<tool_call>{"name": "weather.get-current", "arguments": {"city": "Oslo"}}</tool_call>',  # optional arguments stay optional
    '<tool_call>{"name": "fs.read-file", "arguments": {"path": "a.txt"}}</tool_call>',  # MCP's inputSchema is the argument schema
    "It is sunny in Oslo today.",  # prose is still allowed
])
def test_right_calls_and_prose_pass_unchanged(tok, intent):
    assert drive(tok, tool_call_processor(tok, OPEN_WORLD), intent) == intent


def test_keywords_llguidance_lacks_are_left_unenforced_not_fatal(tok):
    odd = {"name": "odd", "parameters": {"type": "object", "properties": {
        "site": {"type": "string", "format": "uri", "maxLength": 12}, "ids": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
                                                                              "uniqueItems": True, "maxItems": 3},
        "when": {"type": "string", "format": "date"}, "no": {"not": {"type": "null"}}}}}
    intent = '<tool_call>{"name": "odd", "arguments": {"when": "tomorrow"}}</tool_call>'
    text = drive(tok, tool_call_processor(tok, [odd]), intent)
    calls, errors, _ = parse_tool_calls(text)
    assert errors == [] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", calls[0].arguments["when"]), text  # a cheap format is enforced


def test_nested_objects_are_closed_like_the_arguments_object():
    from mmagent.protocol.constrained import argument_schema, closed_objects

    params = argument_schema(WEATHER)
    assert params["additionalProperties"] is False and params["properties"]["at"]["additionalProperties"] is False
    assert params["x-guidance"]["lenient"] is True
    schema = {"type": "object", "properties": {
        "open": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},  # said so: kept
        "both": {"allOf": [{"type": "object", "properties": {"a": {}}}, {"type": "object", "properties": {"b": {}}}]},
        "data": {"type": "object", "default": {"properties": {"x": 1}}}},  # data, not a schema
        "$defs": {"Box": {"type": "object", "properties": {"x0": {"type": "integer"}}}}}
    out = closed_objects(schema)
    assert out["properties"]["open"]["additionalProperties"] is True
    assert all("additionalProperties" not in m for m in out["properties"]["both"]["allOf"])  # closing them would forbid each other's keys
    assert out["properties"]["data"]["default"] == {"properties": {"x": 1}} and "additionalProperties" not in out["properties"]["data"]
    assert out["$defs"]["Box"]["additionalProperties"] is False and "additionalProperties" not in schema["$defs"]["Box"]  # a copy


def test_required_mode_through_the_composed_backend_always_calls():
    """`constrained="required"` (OpenAI's tool_choice: required): the reply is valid calls, never prose."""
    from tiny_mmllm import tiny_mmllm

    from mmagent.backends.composed import ComposedChatModel
    from mmagent.protocol.chat import Message

    tool = {"type": "function", "function": {"name": "get.weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}
    model = ComposedChatModel(tiny_mmllm(), "tiny")
    for prompt in ("hello", "what is the weather in Paris?", "tell me a story"):
        result = model.chat([Message(role="user", content=prompt)], [tool], max_new_tokens=48, constrained="required")
        assert result.parse_errors == [] and result.tool_calls and result.tool_calls[0].name == "get.weather", result.text
        result = model.chat([Message(role="user", content=prompt)], [], max_new_tokens=48, constrained=True)
        assert result.tool_calls == [] and "<tool_call>" not in result.text  # tools=[]: prose only
