"""Tool retrieval (mmagent/backends/tool_retrieval.py): which offered tools the model sees.

A bag-of-words embedder stands in for MiniLM (the thresholds are about cosines, whatever makes them);
one integration test runs the real MiniLM on two requests."""

from __future__ import annotations

import numpy as np
import pytest

from mmagent.backends.tool_retrieval import RetrievingChatModel, ToolRetrieval, ToolRetriever, tool_text
from mmagent.protocol.chat import ChatResult, Message

WORDS = ["weather", "forecast", "city", "stock", "price", "pizza", "order", "image", "text", "read"]


def bag(texts):
    out = np.zeros((len(texts), len(WORDS) + 1), np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().replace(":", " ").replace("?", " ").split():
            if w in WORDS:
                out[i, WORDS.index(w)] += 1
        out[i, -1] = 0.1  # no text is the zero vector
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def fn(name, description):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {"type": "object", "properties": {}}}}


WEATHER = fn("weather.getForecast", "Weather forecast for a city.")
STOCK = fn("stock_price", "Latest stock price.")
PIZZA = fn("orderPizza", "Order a pizza.")
READ = {"type": "function", "function": {"name": "read_text", "description": "Read the text in an image.", "parameters": {}}}


def names(tools):
    return [t["function"]["name"] for t in tools or []]


def test_tool_text_spells_names_in_words():
    assert tool_text(WEATHER) == "weather get forecast: Weather forecast for a city."
    assert tool_text(fn("fuel-cost", "")) == "fuel cost:"
    assert tool_text({"name": "mcpTool", "description": "x", "inputSchema": {}}) == "mcp tool: x"


def test_only_tools_near_the_best_and_above_the_floor_are_offered():
    r = ToolRetriever(ToolRetrieval(min_score=0.3, margin=0.15), embed=bag)
    assert names(r.select("what is the weather forecast in this city", [STOCK, WEATHER, PIZZA])) == ["weather.getForecast"]
    # two things asked, two tools fit about as well: both stay, in the order given
    assert names(r.select("stock price and weather forecast", [WEATHER, STOCK, PIZZA])) == ["weather.getForecast", "stock_price"]
    assert r.select("tell me a joke", [WEATHER, STOCK, PIZZA]) == []  # nothing fits: no tool


def test_known_tools_are_always_offered_and_required_keeps_the_best():
    r = ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag)
    assert names(r.select("tell me a joke", [READ, PIZZA])) == ["read_text"]  # the model's own tools are not filtered
    assert names(r.select("tell me a joke", [STOCK, PIZZA], keep_one=True)) in (["stock_price"], ["orderPizza"])


def test_once_a_users_tool_fits_the_known_ones_must_fit_too():
    r = ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag)
    assert names(r.select("weather forecast for this city", [READ, WEATHER, PIZZA])) == ["weather.getForecast"]  # read_text dropped
    assert names(r.select("read the text and the weather forecast", [READ, WEATHER])) == ["read_text", "weather.getForecast"]
    assert names(r.select("tell me a joke", [READ, PIZZA])) == ["read_text"]  # no user tool fits: the known ones all stay
    off = ToolRetriever(ToolRetrieval(min_score=0.3, focus=False), embed=bag)
    assert names(off.select("weather forecast for this city", [READ, WEATHER, PIZZA])) == ["read_text", "weather.getForecast"]


class Recorder:
    name = "rec"
    constrains_decoding = True

    def __init__(self):
        self.seen = []
        self.temperature = 0.0

    def chat(self, messages, tools=None, **kwargs):
        self.seen.append(names(tools) if tools is not None else None)
        return ChatResult(text="ok")


def test_a_media_turn_keeps_the_known_tools_and_the_users_media_tools_and_filters_the_rest():
    """Passing such a turn through whole sent every image request of an agent with a custom tool to the
    open-world adapter (the built-ins' chains fell 84 -> 76 with convert_currency registered)."""
    inner = Recorder()
    coins = {"type": "function", "function": {"name": "count_coins", "description": "Count coins.",
                                              "parameters": {"type": "object", "properties": {"photo_id": {"type": "string"}}}}}
    model = RetrievingChatModel(inner, ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag))
    sign = Message(role="user", content="read the text please", images=["image_1"])
    model.chat([sign], [READ, WEATHER, PIZZA, coins])
    model.chat([Message(role="user", content="order a pizza like this one", images=["image_1"])], [READ, WEATHER, PIZZA])
    whole = RetrievingChatModel(inner, ToolRetriever(ToolRetrieval(min_score=0.3, filter_media_turns=False), embed=bag))
    whole.chat([sign], [READ, WEATHER, PIZZA])
    # no focus on a media turn: the built-ins see the image, whatever the text says
    assert inner.seen == [["read_text", "count_coins"], ["read_text", "orderPizza"],
                          ["read_text", "weather.getForecast", "orderPizza"]]


def test_the_proxy_filters_per_turn_request_and_passes_attributes_through():
    inner = Recorder()
    model = RetrievingChatModel(inner, ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag))
    ask = Message(role="user", content="order a pizza please")
    model.chat([ask], [WEATHER, PIZZA], constrained=True)
    # a later step of the same turn (after a tool result) is matched on the same request
    model.chat([ask, Message(role="assistant", content=""), Message(role="tool", content="weather forecast city", name="orderPizza")],
               [WEATHER, PIZZA])
    model.chat([Message(role="user", content="tell me a joke")], [WEATHER, PIZZA])
    model.chat([Message(role="user", content="tell me a joke", images=["image_1"])], [WEATHER, PIZZA])
    model.chat([Message(role="user", content="tell me a joke")], [WEATHER, PIZZA], constrained="required")
    assert inner.seen == [["orderPizza"], ["orderPizza"], [], [], [inner.seen[-1][0]]]
    assert model.name == "rec" and model.constrains_decoding
    model.temperature = 0.7  # a server sets it per request: it must reach the model that samples
    assert inner.temperature == 0.7


@pytest.mark.integration
def test_minilm_offers_the_fitting_tool_and_none_for_an_unrelated_request():
    r = ToolRetriever()
    tools = [WEATHER, STOCK, PIZZA]
    assert names(r.select("Will it rain in Lisbon tomorrow?", tools)) == ["weather.getForecast"]
    assert r.select("Write a haiku about autumn leaves.", tools) is None  # plain chat (the router), and no tool fits


def test_an_agent_offers_its_custom_tools_by_the_turns_request(tmp_path):
    from agent_fixtures import make_agent

    agent = make_agent(tmp_path, ["Done.", "Done."], tools=["read_text", WEATHER, PIZZA],
                       tool_retrieval=ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag))
    agent.run("order a pizza please", session="p")
    agent.run("tell me a joke", session="p")
    offered = [sorted(names(tools)) for tools in agent.model.seen_tools]
    assert offered == [["orderPizza"], ["read_text"]]  # a user tool fits: read_text does not, so it is not offered


def test_warm_up_embeds_the_tools_once_in_the_background():
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return bag(texts)

    r = ToolRetriever(ToolRetrieval(min_score=0.3), embed=counting)
    assert r.needed([READ, PIZZA]) and not r.needed([READ])
    r.warm([WEATHER, PIZZA]).join(timeout=10)
    assert names(r.select("order a pizza", [WEATHER, PIZZA])) == ["orderPizza"]
    assert calls == [[tool_text(WEATHER), tool_text(PIZZA)], ["order a pizza"]]  # the tools were not embedded again


def _router(threshold=0.5):
    """A probe on the bag embedding: "agent" where a tool word is present (index 0-9), "chat" where only the bias dim is."""
    from mmagent.backends.chat_router import ChatRouter

    return ChatRouter(encoder="bag", weights=[8.0] * len(WORDS) + [-4.0], bias=0.0, threshold=threshold)


def test_the_chat_router_offers_no_tool_to_plain_chat_on_text_turns_only():
    r = ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag, router=_router())
    assert r.select("tell me a joke", [READ]) is None  # plain chat: no tool in play, the reply is prose
    assert names(r.select("read the text", [READ])) == ["read_text"]  # agent work keeps the built-ins
    assert names(r.select("tell me a joke", [READ], media=True)) == ["read_text"]  # an image may hold the answer
    assert names(r.select("tell me a joke", [READ], keep_one=True)) == ["read_text"]  # the caller demands a call
    assert r.select("tell me a joke", [READ, PIZZA]) is None  # none of the user's tools fits either
    agent_only = ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag, router=_router(threshold=0.0))  # nothing is chat
    assert agent_only.select("tell me a joke", [PIZZA]) == []  # tools in play, none fits: prose from the tuned adapter
    off = ToolRetriever(ToolRetrieval(min_score=0.3, chat_route=False), embed=bag, router=_router())
    assert names(off.select("tell me a joke", [READ])) == ["read_text"]
    # another embedder than the shipped router's MiniLM: without a router of its own, no chat route
    assert names(ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag).select("tell me a joke", [READ])) == ["read_text"]


def test_a_chat_request_that_one_of_the_users_tools_fits_keeps_it():
    r = ToolRetriever(ToolRetrieval(min_score=0.3), embed=bag, router=_router(threshold=1.0))  # everything is "chat"
    assert names(r.select("weather forecast for this city", [READ, WEATHER, PIZZA])) == ["weather.getForecast"]


def test_a_router_file_is_validated_and_its_dimension_checked(tmp_path):
    from mmagent.backends.chat_router import DEFAULT_ROUTER, ChatRouter, load_router

    shipped = load_router(DEFAULT_ROUTER)
    assert shipped.encoder == "minilm-l6" and len(shipped.weights) == 384 and 0 < shipped.threshold < 1
    with pytest.raises(ValueError, match="expects 384-dim"):
        shipped.p_agent(np.zeros(10, np.float32))
    bad = tmp_path / "router.json"
    bad.write_text('{"format": 2, "encoder": "x", "weights": [1.0], "bias": 0, "threshold": 0.5}')
    with pytest.raises(ValueError, match="format 2 is not supported"):
        load_router(bad)
    bad.write_bytes(b"\xff\xfe not json")
    with pytest.raises(ValueError, match="rebuild it with"):
        load_router(bad)
    assert ChatRouter(encoder="x", weights=[1.0], bias=0.0, threshold=0.5).is_chat(np.array([-1.0], np.float32))


def test_the_router_recipe_fits_a_separable_probe_and_picks_a_cautious_threshold():
    from mmagent.recipes.chat_router import fit, threshold_for

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1, 0.3, (60, 4)), rng.normal(-1, 0.3, (40, 4))])
    y = np.r_[np.ones(60), np.zeros(40)]
    w, b = fit(x, y)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    assert ((p > 0.5) == (y == 1)).all()
    t = threshold_for(p, y, max_miss=0.05)
    assert np.mean(p[y == 1] < t) <= 0.05 and np.sort(p[y == 1])[3] >= t  # 3 of 60 below at most: the 4th is not


@pytest.mark.integration
def test_the_shipped_router_tells_chat_from_built_in_requests():
    r = ToolRetriever()
    assert r.is_chat("What is the capital of Japan?") and r.is_chat("What is 17 times 3?")
    assert not r.is_chat("Remember that my bike lock code is 5521.") and not r.is_chat("Draw me a picture of a red boat.")
