"""Value kinds of the open-world data: what a parameter holds, how a person says it, what the call carries.

A kind (`kind("date")`, `kind("list:person")`, `kind("enum:economy,business")`...) has a JSON schema
fragment, a generator, and `say`: the ways a user states a value in a request (digits or words,
units, spelled-out dates, quoted names, lists, nested objects), while the call always carries the
canonical JSON value ("March 4th, 2025" -> "2025-03-04", "an hour and a half" -> 90). `expected`
gives the eval's allowed values (ints become floats where the schema says number, strings are
matched case-insensitively by the eval, so one canonical form is enough).

Every pool here was written for this generator; none is taken from a public benchmark.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

CITIES = ["Lyon", "Porto", "Osaka", "Denver", "Nairobi", "Tallinn", "Cusco", "Perth", "Bergen", "Valencia", "Quebec City", "Hanoi",
          "Krakow", "Seville", "Dublin", "Leeds", "Marseille", "Calgary", "Auckland", "Bilbao", "Ghent", "Turin", "Tucson", "Busan",
          "Split", "Malmo", "Cork", "Bologna", "Salzburg", "Halifax"]
COUNTRIES = ["Portugal", "Japan", "Kenya", "Estonia", "Peru", "Norway", "Vietnam", "Chile", "Morocco", "Canada", "Ireland", "Greece",
             "Mexico", "Iceland", "Thailand", "Poland"]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jada", "Kofi", "Lena", "Mateo", "Nora", "Omar",
         "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe"]
LAST = ["Ruiz", "Okafor", "Martin", "Patel", "Kaya", "Haddad", "Novak", "Sato", "Petrov", "Brooks", "Mensah", "Fischer", "Silva",
        "Lindqvist", "Aziz", "Moreau", "Costa", "Larsen"]
CURRENCIES = {"USD": ["US dollars", "USD", "dollars"], "EUR": ["euros", "EUR"], "GBP": ["British pounds", "GBP", "pounds sterling"],
              "JPY": ["Japanese yen", "JPY", "yen"], "CHF": ["Swiss francs", "CHF"], "CAD": ["Canadian dollars", "CAD"],
              "AUD": ["Australian dollars", "AUD"], "SEK": ["Swedish kronor", "SEK"], "INR": ["Indian rupees", "INR"],
              "MXN": ["Mexican pesos", "MXN"]}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
POOLS: dict[str, list[str]] = {
    "city": CITIES, "country": COUNTRIES, "first_name": FIRST,
    "ticker": ["NWND", "GLBX", "INTK", "HLXR", "BRVO", "QNTM", "SOLR", "VRDA", "KSTL", "ORBT"],
    "product": ["wireless earbuds", "standing desk", "espresso machine", "trail running shoes", "yoga mat", "desk lamp", "rain jacket",
                "electric kettle", "mechanical keyboard", "hiking backpack", "air fryer", "bike helmet", "noise cancelling headphones"],
    "team": ["Riverside Rovers", "Harbor City FC", "Northside Hawks", "Valley Giants", "Lakeshore Lions", "Granite Bears",
             "Coastal Comets", "Iron Valley United", "Redwood Rangers", "Summit Wolves"],
    "league": ["Coastal Premier League", "Northern Basketball Association", "Metro Hockey League", "Island Cricket Cup"],
    "player": ["Marta Ilic", "Jonah Reyes", "Ayo Bello", "Kenji Mori", "Lucia Ferri", "Dara Quinn", "Tomas Berg"],
    "language": ["Spanish", "French", "German", "Japanese", "Portuguese", "Italian", "Korean", "Dutch", "Swahili", "Turkish"],
    "title": ["Quarterly budget review", "Team offsite", "Dentist appointment", "Project kickoff", "Book club", "Design sync",
              "Parent teacher meeting", "Yoga class", "Client call with Globex", "Sprint retro", "Garden party"],
    "message": ["Running ten minutes late", "The keys are under the mat", "Lunch at noon?", "Can you call me back tonight",
                "The report is ready for review", "Happy birthday!", "Meeting moved to the big room", "Don't forget the tickets"],
    "path": ["/home/ana/docs/budget.xlsx", "reports/q3_summary.pdf", "~/photos/beach.jpg", "notes/meeting-notes.md",
             "/var/log/app/server.log", "invoices/march.csv", "drafts/cover_letter.docx", "data/measurements.json"],
    "folder": ["/home/ana/docs", "reports", "~/Downloads", "projects/website", "/tmp/exports", "archive/old"],
    "keywords": ["budget", "vacation photos", "tax return", "lease agreement", "meeting notes", "receipts", "project plan"],
    "formula": ["H2O", "CO2", "NaCl", "C6H12O6", "NH3", "CH4", "H2SO4", "CaCO3"],
    "element": ["Fe", "Au", "Na", "Cu", "He", "Zn", "Ag", "Pb"],
    "artist": ["The Velvet Owls", "Mara Lind", "Neon Harbor", "DJ Kestrel", "Sunday Static", "Ruby Vale"],
    "song": ["Paper Lanterns", "Midnight Ferry", "Glass Garden", "Northern Lights Again", "Slow River", "Copper Sky"],
    "course": ["CS101", "MATH210", "BIO150", "HIST120", "PHYS201", "ECON110"],
    "word": ["serendipity", "ephemeral", "quixotic", "ubiquitous", "laconic", "meticulous"],
    "topic": ["photosynthesis", "the French Revolution", "linear equations", "volcanoes", "the water cycle", "supply and demand"],
    "food": ["oatmeal", "brown rice", "chicken breast", "banana", "almonds", "lentils", "greek yogurt", "salmon"],
    "ingredient": ["eggs", "flour", "milk", "spinach", "garlic", "tomatoes", "chickpeas", "rice", "butter", "mushrooms", "lemon"],
    "medication": ["ibuprofen", "vitamin D", "amoxicillin", "metformin", "loratadine"],
    "pet_name": ["Biscuit", "Luna", "Pepper", "Milo", "Olive", "Rocky", "Mochi"],
    "street": ["12 Baker Street", "48 Elm Road", "7 Harbour Lane", "230 Pine Avenue", "19 Mill Close", "5 Station Road"],
    "postal": ["LS1 4AP", "80202", "M5V 2T6", "1011 AB", "75011", "D02 X285", "94107"],
    "tag": ["work", "urgent", "personal", "travel", "family", "finance", "ideas"],
    "url": ["https://news.example.com/markets/rates-hold", "https://blog.example.org/garden-tips", "https://example.net/reports/climate"],
    "star": ["Sirius", "Vega", "Betelgeuse", "Polaris", "Arcturus", "Rigel"],
}
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in English words ("four hundred and twelve")."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return ONES[n // 100] + " hundred" + (" and " + number_words(n % 100) if n % 100 else "")
    return number_words(n // 1000) + " thousand" + ((" " if n % 1000 >= 100 else " and ") + number_words(n % 1000) if n % 1000 else "")


def _num(rng: random.Random, v: float, words: float = 0.3) -> str:
    """A number as digits, with thousands separators, or in words (whole numbers only)."""
    if float(v).is_integer():
        n = int(v)
        if 0 <= n < 10000 and rng.random() < words:
            return number_words(n)
        return f"{n:,}" if n >= 1000 and rng.random() < 0.5 else str(n)
    return f"{v:g}"


def _join(rng: random.Random, items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    if rng.random() < 0.25:
        return ", ".join(items)
    return ", ".join(items[:-1]) + rng.choice([" and ", ", and ", " & "]) + items[-1]


def _quote(rng: random.Random, s: str) -> str:
    return rng.choice(['"{}"', "'{}'", "“{}”", '"{}"', "{}"]).format(s)


@dataclass(frozen=True)
class Kind:
    """A value kind: JSON schema, generator, the ways to say a value, and how a follow-up refers to it."""

    name: str
    schema: dict[str, Any]
    gen: Callable[[random.Random], Any]
    say: Callable[[random.Random, Any], str]
    clause: str = "{v}"  # how an optional parameter of this kind is added to a request
    ref: str = "that"  # how a later turn points back to such a value
    digits: bool = False  # whether `say` may write digits (irrelevance answers never repeat one)
    extra: dict[str, Any] = field(default_factory=dict)


def _pick(pool: list[str]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(pool)


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2025, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _say_date(rng: random.Random, v: str) -> str:
    y, m, d = (int(x) for x in v.split("-"))
    suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return rng.choice([f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1]} {y}", v, f"the {d}{suffix} of {MONTHS[m - 1]} {y}",
                       f"{MONTHS[m - 1][:3]} {d} {y}", f"{MONTHS[m - 1]} {d}{suffix}, {y}"])


def _time(rng: random.Random) -> str:
    return f"{rng.randint(7, 21):02d}:{rng.choice([0, 0, 15, 30, 45]):02d}"


def _say_time(rng: random.Random, v: str) -> str:
    h, m = (int(x) for x in v.split(":"))
    h12, ampm = (h - 1) % 12 + 1, "am" if h < 12 else "pm"
    forms = [v, f"{h12}:{m:02d} {ampm}", f"{h12}:{m:02d}{ampm.upper()}"]
    if m == 0:
        forms += [f"{h12} {ampm}", f"{h12} o'clock in the {'morning' if h < 12 else 'afternoon' if h < 18 else 'evening'}"]
        if h == 12:
            forms.append("noon")
    if m == 30:
        forms.append(f"half past {number_words(h12)} in the {'morning' if h < 12 else 'afternoon' if h < 18 else 'evening'}")
    return rng.choice(forms)


MINUTE_WORDS = {15: ["a quarter of an hour"], 30: ["half an hour", "thirty minutes"], 45: ["three quarters of an hour"],
                60: ["an hour", "one hour", "1 hour"], 90: ["an hour and a half", "1.5 hours", "ninety minutes"],
                120: ["two hours", "2 hours"], 180: ["three hours", "3 hours"]}


def _say_minutes(rng: random.Random, v: int) -> str:
    return rng.choice(MINUTE_WORDS.get(v, []) + [f"{v} minutes", f"{v} min", f"{_num(rng, v)} minutes"])


def _float(lo: float, hi: float, dec: int) -> Callable[[random.Random], float]:
    def g(rng: random.Random) -> float:
        v = round(rng.uniform(lo, hi), dec)
        return float(int(v)) if dec == 0 else v
    return g


def _unit(*forms: str, words: float = 0.2) -> Callable[[random.Random, Any], str]:
    """A number with its unit; in words only beside a spelled unit ("twelve kilometers", never "twelve%")."""
    def say(rng: random.Random, v: Any) -> str:
        form = rng.choice(forms)
        return form.format(_num(rng, v, words if form.replace("{}", "").strip()[:1].isalpha() else 0.0))
    return say


def _point(rng: random.Random) -> dict[str, float]:
    return {"lat": round(rng.uniform(-50, 60), 2), "lon": round(rng.uniform(-120, 150), 2)}


def _say_point(rng: random.Random, v: dict[str, float]) -> str:
    lat, lon = v["lat"], v["lon"]
    return rng.choice([f"latitude {lat}, longitude {lon}", f"({lat}, {lon})", f"coordinates {lat}, {lon}",
                       f"{abs(lat)}°{'N' if lat >= 0 else 'S'} {abs(lon)}°{'E' if lon >= 0 else 'W'}"])


def _dims(rng: random.Random) -> dict[str, float]:
    return {k: float(rng.randint(5, 80)) for k in ("length_cm", "width_cm", "height_cm")}


def _say_dims(rng: random.Random, v: dict[str, float]) -> str:
    a, b, c = (int(x) for x in v.values())
    return rng.choice([f"{a} x {b} x {c} cm", f"{a} by {b} by {c} centimeters", f"{a}x{b}x{c}cm", f"{a} cm long, {b} cm wide and {c} cm high"])


def _address(rng: random.Random) -> dict[str, str]:
    return {"street": rng.choice(POOLS["street"]), "city": rng.choice(CITIES), "postal_code": rng.choice(POOLS["postal"])}


def _say_address(rng: random.Random, v: dict[str, str]) -> str:
    return rng.choice(["{street}, {city} {postal_code}", "{street} in {city}, postcode {postal_code}", "{street}, {city}, {postal_code}"]).format(**v)


def _range_money(rng: random.Random) -> dict[str, float]:
    lo = float(rng.choice([10, 20, 25, 50, 100, 150, 200]))
    return {"min": lo, "max": lo * rng.choice([2, 3, 4, 5])}


def _say_range_money(rng: random.Random, v: dict[str, float]) -> str:
    a, b = int(v["min"]), int(v["max"])
    return rng.choice([f"between ${a} and ${b}", f"from {a} to {b} dollars", f"${a}-${b}", f"at least ${a} but no more than ${b}"])


def _date_range(rng: random.Random) -> dict[str, str]:
    y, m, d = rng.randint(2025, 2026), rng.randint(1, 12), rng.randint(1, 18)
    return {"start": f"{y}-{m:02d}-{d:02d}", "end": f"{y}-{m:02d}-{d + rng.randint(1, 9):02d}"}


def _say_date_range(rng: random.Random, v: dict[str, str]) -> str:
    (y, m, d1), (_, _, d2) = ([int(x) for x in v[k].split("-")] for k in ("start", "end"))
    mon = MONTHS[m - 1]
    return rng.choice([f"from {mon} {d1} to {mon} {d2}, {y}", f"between {v['start']} and {v['end']}", f"{d1}-{d2} {mon} {y}",
                       f"from {_say_date(rng, v['start'])} until {_say_date(rng, v['end'])}"])


def _time_window(rng: random.Random) -> dict[str, str]:
    h = rng.randint(8, 16)
    return {"start": f"{h:02d}:00", "end": f"{h + rng.randint(1, 4):02d}:{rng.choice([0, 30]):02d}"}


def _say_window(rng: random.Random, v: dict[str, str]) -> str:
    return rng.choice([f"between {_say_time(rng, v['start'])} and {_say_time(rng, v['end'])}", f"from {v['start']} to {v['end']}"])


def _obj(props: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


NUM, INT, STR = {"type": "number"}, {"type": "integer"}, {"type": "string"}
_BASE: dict[str, Kind] = {}


def _k(name: str, schema: dict[str, Any], gen: Callable, say: Callable, clause: str = "{v}", ref: str = "that", digits: bool = False) -> None:
    _BASE[name] = Kind(name, schema, gen, say, clause, ref, digits)


for _name, _clause, _ref in [("city", "in {v}", "that city"), ("country", "for {v}", "that country"), ("ticker", "for {v}", "that stock"),
                             ("product", "for {v}", "that product"), ("team", "for the {v}", "that team"), ("league", "in the {v}", "that league"),
                             ("player", "for {v}", "that player"), ("language", "in {v}", "that language"), ("formula", "for {v}", "that"),
                             ("element", "for {v}", "that element"), ("artist", "by {v}", "that artist"), ("course", "for {v}", "that course"),
                             ("word", "for {v}", "that word"), ("topic", "about {v}", "that topic"), ("food", "for {v}", "that food"),
                             ("medication", "for {v}", "that medication"), ("pet_name", "for {v}", "that pet"), ("star", "for {v}", "that star"),
                             ("first_name", "for {v}", "them"), ("keywords", "matching {v}", "that"),
                             ("ingredient", "with {v}", "that"), ("tag", "tagged {v}", "that tag")]:
    _k(_name, STR, _pick(POOLS[_name]), lambda rng, v: v, _clause, _ref, digits=_name in ("formula", "course"))
for _name, _clause in [("title", "titled {v}"), ("message", "saying {v}"), ("path", "at {v}"), ("folder", "in {v}"), ("song", "{v}"), ("url", "at {v}")]:
    _k(_name, STR, _pick(POOLS[_name]), lambda rng, v: _quote(rng, v), _clause, "that file" if _name == "path" else "that", digits=True)
_k("person", STR, lambda rng: f"{rng.choice(FIRST)} {rng.choice(LAST)}", lambda rng, v: v, "for {v}", "them")
_k("email", STR, lambda rng: f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.com", lambda rng, v: v, "to {v}", "that address")
_k("currency", STR, lambda rng: rng.choice(sorted(CURRENCIES)), lambda rng, v: rng.choice(CURRENCIES[v]), "in {v}", "that currency")
_k("date", {"type": "string", "format": "date"}, _date, _say_date, "on {v}", "that day", digits=True)
_k("time", {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}, _time, _say_time, "at {v}", "that time", digits=True)
_k("minutes", INT, lambda rng: rng.choice([15, 20, 30, 45, 60, 90, 120, 180]), _say_minutes, "for {v}", "that long", digits=True)
_k("count", INT, lambda rng: rng.randint(1, 12), lambda rng, v: _num(rng, v, 0.5), "{v}", "that many", digits=True)
_k("year", INT, lambda rng: rng.randint(2015, 2025), lambda rng, v: str(v), "in {v}", "that year", digits=True)
_k("month", {"type": "integer", "minimum": 1, "maximum": 12}, lambda rng: rng.randint(1, 12), lambda rng, v: MONTHS[v - 1], "for {v}", "that month")
_k("amount", NUM, _float(10, 5000, 0), lambda rng, v: _num(rng, v, 0.15), "{v}", "that amount", digits=True)
_k("money", NUM, lambda rng: rng.choice([_float(5, 3000, 0), _float(5, 500, 2)])(rng), _unit("${}", "{} dollars", "{} USD", words=0.1),
   "for {v}", "that amount", digits=True)
_k("percent", NUM, lambda rng: rng.choice([_float(1, 12, 1), _float(1, 30, 0)])(rng), _unit("{}%", "{} percent", "{} per cent", words=0.15),
   "at {v}", "that rate", digits=True)
_k("temp_c", NUM, _float(12, 28, 0), _unit("{} degrees", "{}°C", "{} degrees Celsius", words=0.3), "to {v}", "that temperature", digits=True)
_k("km", NUM, lambda rng: rng.choice([_float(1, 50, 0), _float(1, 30, 1)])(rng), _unit("{} km", "{} kilometers", "{} kilometres", words=0.25),
   "for {v}", "that distance", digits=True)
_k("kg", NUM, lambda rng: rng.choice([_float(1, 90, 0), _float(0.5, 20, 1)])(rng), _unit("{} kg", "{} kilograms", "{} kilos", words=0.2),
   "weighing {v}", "that weight", digits=True)
_k("cm", NUM, _float(40, 200, 0), _unit("{} cm", "{} centimeters", words=0.2), "{v} tall", "that height", digits=True)
_k("rating", {"type": "integer", "minimum": 1, "maximum": 5}, lambda rng: rng.randint(1, 5),
   lambda rng, v: rng.choice([f"{v} stars", f"{number_words(v)} stars", f"{v} out of 5"]), "rated at least {v}", "that rating", digits=True)
_k("level", {"type": "integer", "minimum": 0, "maximum": 100}, lambda rng: rng.choice(range(10, 101, 5)), _unit("{}%", "{} percent", "level {}"),
   "at {v}", "that level", digits=True)
_k("point", _obj({"lat": NUM, "lon": NUM}), _point, _say_point, "near {v}", "that spot", digits=True)
_k("dims", _obj({"length_cm": NUM, "width_cm": NUM, "height_cm": NUM}), _dims, _say_dims, "measuring {v}", "that size", digits=True)
_k("address", _obj({"street": STR, "city": STR, "postal_code": STR}), _address, _say_address, "at {v}", "that address", digits=True)
_k("price_range", _obj({"min": NUM, "max": NUM}), _range_money, _say_range_money, "{v}", "that range", digits=True)
_k("date_range", _obj({"start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}), _date_range,
   _say_date_range, "{v}", "those dates", digits=True)
_k("time_window", _obj({"start": STR, "end": STR}), _time_window, _say_window, "{v}", "that window", digits=True)


@lru_cache(maxsize=None)
def kind(spec: str) -> Kind:
    """The kind of a spec: a base name, `id:PFX`, `int:LO:HI`, `float:LO:HI:DEC`, `bool`, `enum:a,b`, `list:<spec>`, `listn:LO:HI`."""
    if spec in _BASE:
        return _BASE[spec]
    head, _, rest = spec.partition(":")
    if head == "id":
        return Kind(spec, STR, lambda rng: f"{rest}-{rng.randint(1000, 99999)}", lambda rng, v: v, "for {v}", "that one", True)
    if head == "int":
        lo, hi = (int(x) for x in rest.split(":"))
        return Kind(spec, {"type": "integer", "minimum": lo, "maximum": hi}, lambda rng: rng.randint(lo, hi),
                    lambda rng, v: _num(rng, v, 0.35), "{v}", "that", True)
    if head == "float":
        lo, hi, dec = rest.split(":")
        return Kind(spec, NUM, _float(float(lo), float(hi), int(dec)), lambda rng, v: _num(rng, v, 0.1), "{v}", "that", True)
    if head == "bool":
        return Kind(spec, {"type": "boolean"}, lambda rng: rng.random() < 0.5, lambda rng, v: "yes" if v else "no")
    if head == "enum":
        vals = rest.split(",")
        return Kind(spec, {"type": "string", "enum": vals}, lambda rng: rng.choice(vals), lambda rng, v: v.replace("_", " "), "{v}", "that",
                    any(c.isdigit() for c in rest))
    if head == "listn":
        lo, hi = (float(x) for x in rest.split(":"))

        def gen_n(rng: random.Random) -> list[float]:
            dec = rng.choice([0, 0, 1])
            return [_float(lo, hi, dec)(rng) for _ in range(rng.randint(2, 6))]

        def say_n(rng: random.Random, v: list[float]) -> str:
            parts = [f"{x:g}" for x in v]
            return rng.choice([_join(rng, parts), "[" + ", ".join(parts) + "]", " ".join(parts) if rng.random() < 0.3 else _join(rng, parts)])

        return Kind(spec, {"type": "array", "items": NUM}, gen_n, say_n, "{v}", "those numbers", True)
    if head == "list":
        inner = kind(rest)

        def gen_l(rng: random.Random) -> list[Any]:
            out: list[Any] = []
            for _ in range(rng.randint(2, 4)):
                v = inner.gen(rng)
                if v not in out:
                    out.append(v)
            return out

        return Kind(spec, {"type": "array", "items": inner.schema}, gen_l, lambda rng, v: _join(rng, [inner.say(rng, x) for x in v]),
                    inner.clause, "them", inner.digits)
    raise KeyError(f"unknown value kind {spec!r}")


def map_numbers(schema: dict[str, Any], value: Any, fn: Callable[[Any], Any]) -> Any:
    """`fn` applied to every value the schema types as a number, through arrays and objects."""
    t = schema.get("type")
    if t == "number":
        return fn(value)
    if t == "array":
        return [map_numbers(schema.get("items", {}), x, fn) for x in value]
    if t == "object":
        props = schema.get("properties", {})
        return {k: map_numbers(props.get(k, {}), v, fn) for k, v in value.items()}
    return value


def expected(schema: dict[str, Any], value: Any) -> Any:
    """The canonical value as the eval compares it: whole numbers become floats where the schema says number."""
    return map_numbers(schema, value, float)


def plain(value: Any) -> str:
    """A value as a final answer states it (results are reported as they came back)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):  # exactly as the tool returned it: a reply copies numbers, never rounds them
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return ", ".join(plain(x) for x in value)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {plain(v)}" for k, v in value.items())
    return str(value)
