"""Argument grounding: an optional argument the conversation never mentions is left out of a call.

Why: a small model under schema-guided decoding writes every argument it has a slot for. Where the
user said nothing of an optional parameter it fills in a stock value (`"city": "London"`,
`"tilt_degrees": 30`, `"date": "2022-01-01"`), and the tool then runs with a setting nobody asked
for, where its own default would have applied (the held-out open-world misses of the shipped
default, issue 18: the most common wrong-argument kind). Required arguments are never touched:
the schema needs them, and the grammar already made the model write one.

A value is *grounded* when the conversation's text (user turns and tool results, never the system
prompt, whose signatures hold example values) states it:
- a number: equal to a number the text states in digits ("3,817", "5k", "24%"), words ("eighty-two",
  "seven thousand six hundred and eighty-nine"), as an ordinal ("3rd", "fifth"), a month name
  (June -> 6) or a clock time's hour (4:30 pm -> 16);
- a string: its words appear in the text (case and punctuation aside; a word may share its first 3+
  letters with one of the text: "EUR" / "euros"), or it is a date or time whose
  numbers all appear ("2025-06-06" from "6 June 2025", "16:30" from "4:30 pm");
- an enum value or `true`: always (a choice among the schema's own values is the model's reading of
  the request, often through a synonym: "ozone" -> "o3"); `false` with no default of `true`, and any
  value equal to the schema's default, never: dropping it changes nothing the tool does;
- an array or object: every value inside it is grounded.
Artifact ids (`x-artifact` parameters: `image_1`) and values of other types are left as written.

    ground_calls(calls, messages, tools) -> (calls without their ungrounded optional arguments, notes)

The same reading of numbers serves the model's input: `annotated(messages)` writes the digits of
spelled-out numbers and the 24-hour form of 12-hour clock times beside them in the user turns a
tool-calling step is shown (the interaction log keeps what the user wrote).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from mmagent.protocol.chat import Message, ToolCall
from mmagent.protocol.toolcall import function_of

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                      "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9, "twelfth": 12}
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_SUFFIX = {"k": 1e3, "m": 1e6, "bn": 1e9, "b": 1e9}
# Digits wherever they stand: "96x128", "MTR-1084", "$2,826", "650k" (a suffix only where no letter follows).
_DIGITS = re.compile(r"(?<![\d.])(-?)(\d[\d,]*(?:\.\d+)?)(?:(k|m|bn|b)(?![a-z]))?", re.IGNORECASE)
_ORDINAL_DIGITS = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
# Read, not rewritten: "4 a.m" counts too; `_CLOCK_SPAN` (the annotation's) keeps a sentence's full stop out.
_CLOCK = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)", re.IGNORECASE)
_DATE_OR_TIME = re.compile(r"^[\d\s:/.\-T+Z]+$")
_WORD = re.compile(r"[a-z0-9]+")


def ground_calls(calls: Sequence[ToolCall], messages: Sequence[Message], tools: Sequence[dict[str, Any]]) -> tuple[list[ToolCall], list[str]]:
    """`calls` with every optional argument the conversation does not state left out, and a note per
    argument dropped (`"find_vet: dropped animal='dog' (not in the conversation)"`). A call of a tool not
    in `tools` is returned as it is (the registry reports the unknown tool)."""
    if not calls:  # most replies: nothing to read the conversation for
        return [], []
    source = Source(messages)
    schemas = {(fn := function_of(t))["name"]: fn.get("parameters") or {} for t in tools}
    out, notes = [], []
    for call in calls:
        params = schemas.get(call.name)
        if not isinstance(params, dict):  # an unknown tool, or a schema the registry will refuse: left to report
            out.append(call)
            continue
        props, required = _mapping(params.get("properties")), params.get("required")
        required = set(required) if isinstance(required, list) else set()
        kept = {}
        for name, value in call.arguments.items():
            schema = props.get(name)
            if name in required or not isinstance(schema, dict) or source.grounds(value, schema):
                kept[name] = value
            else:
                notes.append(f"{call.name}: dropped {name}={value!r} (not in the conversation)")
        out.append(call if len(kept) == len(call.arguments) else call.model_copy(update={"arguments": kept}))
    return out, notes


class Source:
    """What a conversation states: its words and the numbers they say."""

    def __init__(self, messages: Iterable[Message]) -> None:
        text = " ".join(m.content for m in messages if m.role in ("user", "tool"))
        self.text = " ".join(_WORD.findall(text.lower()))
        self.words = set(self.text.split())
        self.numbers = stated_numbers(text)

    def grounds(self, value: Any, schema: dict[str, Any]) -> bool:
        if "x-artifact" in schema:
            return True
        if "default" in schema and value == schema["default"] and type(value) is type(schema["default"]):
            return False  # the tool does the same without it
        if "enum" in schema or isinstance(value, bool):
            # A choice among the schema's own values is the model's reading of the request, often through a synonym
            # ("ozone" -> "o3", "video tour" -> virtual: true); only a false flag nobody set is dropped: the tool's
            # behaviour unasked.
            return value is not False or schema.get("default") is True
        if isinstance(value, (int, float)):
            return self.states_number(value)
        if isinstance(value, str):
            return self.states_string(value)
        if isinstance(value, list):
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            return all(self.grounds(v, items) for v in value)
        if isinstance(value, dict):
            props = _mapping(schema.get("properties"))
            return all(self.grounds(v, _mapping(props.get(k))) for k, v in value.items())
        return True

    def states_number(self, value: float) -> bool:
        return any(abs(value - n) < 1e-6 * max(1.0, abs(n)) for n in self.numbers)

    def states_string(self, value: str) -> bool:
        words = _WORD.findall(value.lower())
        if not words:
            return True  # punctuation or empty: nothing to ground
        if _DATE_OR_TIME.match(value.strip()):
            return all(self.states_number(float(w)) for w in words if w.isdigit())
        if re.search(rf"\b{re.escape(' '.join(words))}\b", self.text):
            return True
        return all(self._states_word(w) for w in words)

    def _states_word(self, w: str) -> bool:
        """A word of a value in the text, or sharing its first 3+ letters with one ("eur" / "euros", "pm25" / "pm2")."""
        if w in self.words or (w.isdigit() and self.states_number(float(w))):
            return True
        return len(w) >= 3 and any(len(s) >= 3 and (s.startswith(w) or w.startswith(s)) for s in self.words)


def _mapping(value: Any) -> dict[str, Any]:
    """A schema keyword's value where a mapping is expected; anything else (a user's malformed schema) reads as {}."""
    return value if isinstance(value, dict) else {}


def stated_numbers(text: str) -> set[float]:
    """Every number `text` states, in digits, words, ordinals, month names or clock times (and each
    percentage also as a fraction: "24%" -> 24 and 0.24)."""
    low = text.lower()
    out: set[float] = set()
    for m in _DIGITS.finditer(low):
        n = float(m.group(2).replace(",", ""))  # digits and at most one decimal point: always a float
        out.add(n)
        out |= {float(part) for part in m.group(2).split(",") if part}  # "1,2,3" is a list as often as 1,500 is one number
        if m.group(1) and not low[max(0, m.start() - 1):m.start()].isalnum():  # "-26.13", not "MTR-1084"
            out.add(-n)
        if m.group(3):
            out.add(n * _SUFFIX[m.group(3).lower()])
        if low[m.end():m.end() + 1] == "%" or low[m.end():m.end() + 8].strip().startswith("percent"):
            out.add(n / 100)
    out |= {float(m.group(1)) for m in _ORDINAL_DIGITS.finditer(low)}
    for m in _CLOCK.finditer(low):
        hour = int(m.group(1)) % 12 + (12 if m.group(3).startswith("p") else 0)
        out.add(float(hour))
    for word, month in zip(_MONTHS, range(1, 13)):
        if re.search(rf"\b{word[:3]}", low):
            out.add(float(month))
    out |= {float(n) for n in _word_numbers(low)}
    if "noon" in low or "midnight" in low:
        out |= {12.0, 0.0}
    if "dozen" in low:
        out.add(12.0)
    return out


def _word_numbers(low: str) -> list[int]:
    """Numbers spelled out in words ("seven thousand six hundred and eighty-nine" -> 7689; "fifth" -> 5)."""
    found: list[int] = []
    total = current = 0
    seen = False
    for tok in re.findall(r"[a-z]+", low.replace("-", " ")):
        word = _cardinal(tok)
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
            seen = True
        elif word in _SCALES and seen:
            scale = _SCALES[word]
            if scale == 100:
                current *= 100
            else:
                total, current = total + current * scale, 0
        elif tok == "and" and seen:
            continue
        elif seen:
            found.append(total + current)
            total = current = 0
            seen = False
        if word != tok and seen:  # an ordinal ends its number ("twenty-first")
            found.append(total + current)
            total = current = 0
            seen = False
    if seen:
        found.append(total + current)
    return found


def _cardinal(tok: str) -> str:
    """The cardinal word of an ordinal ("fifth" -> "five", "twentieth" -> "twenty"); other words as they are."""
    if tok in _ORDINALS:
        return next(w for w, n in _UNITS.items() if n == _ORDINALS[tok])
    if tok.endswith("ieth") and tok[:-4] + "y" in _TENS:
        return tok[:-4] + "y"
    if tok.endswith("th") and tok[:-2] in _UNITS:
        return tok[:-2]
    return tok


def annotate_values(text: str) -> str:
    """`text` with the digits of what it spells out written beside it, for the model's eyes only:
    "seven thousand six hundred and eighty-nine kWh" -> "... eighty-nine (7689) kWh", "4:30 pm" ->
    "4:30 pm (16:30)", "$400,000" -> "$400,000 (400000)", "650k" -> "650k (650000)". A 135M model copies digits
    well and converts words, 12-hour clocks and thousands badly (issue 18: spelled-out numbers 0/12 strict, 12-hour
    times 3/19, "$2,826" -> 2). A lone "one" is left alone (a pronoun as often as a number: "book that one")."""
    text = _CLOCK_SPAN.sub(_clock_24h, text)
    text = _GROUPED.sub(lambda m: f"{m.group(0)} ({m.group(0).replace(',', '')})", text)
    text = _SCALED.sub(_digits_of_scaled, text)
    return _WORDS_SPAN.sub(_digits_of_words, text)


def annotated(messages: Sequence[Message]) -> list[Message]:
    """The user turns of `messages` through `annotate_values` (copies; the others as they are)."""
    return [m.model_copy(update={"content": annotate_values(m.content)}) if m.role == "user" and m.content else m
            for m in messages]


_NUMBER_WORD = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
                r"thousand|million|billion)")
_WORDS_SPAN = re.compile(rf"\b{_NUMBER_WORD}(?:(?:[\s-]+|\s+and\s+){_NUMBER_WORD})*\b", re.IGNORECASE)
_GROUPED = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,]|\.\d)")  # 1,500 / 2,420.50
# 650k, 3.5k, 2bn: attached suffixes only ("3 m" is metres, "5 km" is not 5000)
_SCALED = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?)([kK]|bn)\b")
_CLOCK_SPAN = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])(?:\.m\.|m\b)", re.IGNORECASE)  # "4:30 pm", "9 a.m."


def _clock_24h(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if not 1 <= hour <= 12 or minute > 59:
        return m.group(0)
    hour = hour % 12 + (12 if m.group(3).lower() == "p" else 0)
    return f"{m.group(0)} ({hour:02d}:{minute:02d})"


def _digits_of_scaled(m: re.Match[str]) -> str:
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    return f"{m.group(0)} ({value:.15g})"


def _digits_of_words(m: re.Match[str]) -> str:
    span = m.group(0)
    numbers = _word_numbers(span.lower())
    if len(numbers) != 1 or span.lower() == "one":
        return span
    return f"{span} ({numbers[0]})"


__all__ = ["Source", "ground_calls", "stated_numbers", "annotate_values", "annotated"]
