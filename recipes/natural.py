"""Natural phrasings of the built-in tasks: how people actually ask, beyond the imperative templates.

Kinds (all training-only; the held-out phrasings of `phrasings.py` are never used):
- indirect: a question whose answer needs a tool though it names none: "Is parking allowed
  here?" about a sign (read_text), "When is this due?" about a document, "How many people are in
  this picture?" (detect_faces), "Is this a daisy?" (classify_image), "Are there any triangles?"
  (detect_objects), "What's my locker code again?" (search_memory); the answer draws the
  conclusion from the result;
- typo: a seen single-call request with a slip in one of the phrasing's own words (never in a value);
- sentences: the request inside several sentences (context before, a remark after);
- closing: a finished tool conversation followed by thanks or goodbye, answered without a tool;
  or a closing alone. Kept whole by the trainer (`"whole": true`): cutting at the last call would
  drop exactly the turn it teaches.
"""

from __future__ import annotations

import random
import re

from mmagent.recipes import phrasings as P
from mmagent.recipes.data import SINGLE_INTENTS, Example, call_turns, result_for, single, user_message
from mmagent.recipes.drawings import PHOTOS, draw, draw_document, draw_sign

from mmagent.protocol.chat import Message, ToolCall

SIGN_QUESTIONS = {
    "PARKING": [("Is parking allowed here?", "Yes: the sign says \"PARKING\", so you can park here."), ("Can I leave my car here?", "Yes, the sign says \"PARKING\".")],
    "NO ENTRY": [("Can I go in this way?", "No, the sign says \"NO ENTRY\"."), ("Am I allowed to walk through here?", "No: the sign reads \"NO ENTRY\".")],
    "OPEN": [("Is this place open?", "Yes, the sign says \"OPEN\"."), ("Can I go in now?", "Yes, it says \"OPEN\".")],
    "CLOSED": [("Is this place open?", "No, the sign says \"CLOSED\"."), ("Can I go in now?", "Not right now: the sign says \"CLOSED\".")],
    "PUSH": [("Do I push or pull this door?", "Push: the sign says \"PUSH\".")],
    "PULL": [("Do I push or pull this door?", "Pull: the sign says \"PULL\".")],
    "EXIT": [("Is this the way out?", "Yes, the sign says \"EXIT\"."), ("How do I get out of here?", "Follow this sign: it says \"EXIT\".")],
    "TOILETS": [("Is there a restroom around here?", "Yes, the sign says \"TOILETS\".")],
    "QUIET": [("Can I make a phone call here?", "Better not: the sign says \"QUIET\".")],
    "DANGER": [("Is it safe to go past this sign?", "No, the sign says \"DANGER\", so keep away.")],
    "ONE WAY": [("Can I drive both directions on this street?", "No, the sign says \"ONE WAY\".")],
    "BUS STOP": [("Can I catch a bus here?", "Yes, the sign says \"BUS STOP\".")],
    "TAXI": [("Can I get a cab here?", "Yes, the sign says \"TAXI\".")],
    "STOP": [("Do I have to stop here?", "Yes, the sign says \"STOP\".")],
    "SALE": [("Are there any discounts in this shop?", "Looks like it: the sign says \"SALE\".")],
    "TICKETS": [("Where can I buy tickets?", "Right here: the sign says \"TICKETS\".")],
}
PLACE_WORDS = {"CAFE": "cafe", "BAKERY": "bakery", "PHARMACY": "pharmacy", "HOTEL": "hotel", "LIBRARY": "library"}
DOC_QUESTIONS = {
    "Total: 45.20": ("How much do I have to pay?", "The total is 45.20."), "Due May 3": ("When is this due?", "It is due May 3."),
    "Gate B12": ("Which gate do I need?", "Gate B12."), "Seat 14C": ("Where am I sitting?", "You are in seat 14C."),
    "Room 204": ("Which room is it in?", "Room 204."), "Flight LH 402": ("What's my flight number?", "It's LH 402."),
    "Meeting at 10am": ("What time is the meeting?", "The meeting is at 10am."), "Pick up kids 3pm": ("When do I pick up the kids?", "At 3pm."),
    "Menu: soup 4.50": ("How much is the soup?", "The soup is 4.50."), "Order #5512": ("What's the order number on this?", "Order #5512."),
}
MEMORY_QUESTIONS = [("What's my locker code again?", "my locker code"), ("When was the meeting again?", "the meeting time"),
                    ("What was the wifi password?", "the wifi password"), ("Where did I park?", "where I parked"),
                    ("Who is my dentist again?", "my dentist"), ("When is the project due?", "the project deadline"),
                    ("What's Lisa's number?", "Lisa's phone number"), ("How much do I owe Mark?", "money I owe")]
LOOK = ["", "", "I'm looking at this sign. ", "Quick one about this picture: ", "See the photo. ", "I just took this. "]
CONTEXT = {"read_text": ["I took this photo at the station.", "My eyes aren't great today.", "I can't make out the writing."],
           "detect_faces": ["This is from our team dinner.", "I'm sorting old photos."], "detect_objects": ["My kid drew this.", "I'm testing the detector."],
           "classify_image": ["I found this picture online.", "Not sure what this is."], "generate_image": ["I'm making a birthday card.", "I need art for a poster."],
           "transcribe_audio": ["My friend left me a voice memo.", "I recorded this in a meeting."], "remember": ["I keep forgetting things.", "This is important."],
           "search_memory": ["I told you something last week.", "I saved a note earlier."]}
GENERIC_CONTEXT = ["I have a quick task for you.", "Here's what I need.", "Okay, next thing."]
AFTER = ["Thanks in advance!", "No rush.", "It's for a school project.", "Appreciate it."]
THANKS = [("Thanks!", "You're welcome!"), ("Perfect, that's all.", "Glad I could help!"), ("Great, thank you so much.", "Anytime. Let me know if you need anything else."),
          ("Thanks, bye!", "Bye! Have a good day."), ("Cool, thanks.", "You're welcome."), ("That's exactly what I needed, thanks.", "Happy to help!"),
          ("ok thx", "You're welcome!"), ("Awesome. Cheers!", "Cheers!")]
KINDS = {"indirect": 0.4, "typo": 0.2, "sentences": 0.2, "closing": 0.2}


def _said(name: str, d) -> tuple[ToolCall, dict]:
    call = ToolCall(name=name, arguments={"image": "image_1"}, id="call_1")
    return call, result_for(name, call.arguments, d, {})


def indirect(rng: random.Random, idx: str) -> Example:
    u = rng.random()
    if u < 0.35:
        d = draw_sign(rng)
        w = d.text[0]
        if w in SIGN_QUESTIONS:
            q, a = rng.choice(SIGN_QUESTIONS[w])
        elif w in PLACE_WORDS:
            q, a = "What kind of place is this?", f"It's a {PLACE_WORDS[w]}: the sign says \"{w}\"."
        else:
            q, a = "What does this sign tell me?", f"It says \"{w}\"."
        name, template = "read_text", f"indirect/sign/{w}"
    elif u < 0.55:
        line = rng.choice(sorted(DOC_QUESTIONS))
        d = draw_document(rng)
        for _ in range(300):
            if line in d.text:
                break
            d = draw_document(rng)
        else:
            d.text[0] = line  # unreachable in practice; keeps the text true to the question
        q, a = DOC_QUESTIONS[line]
        name, template = "read_text", f"indirect/doc/{line}"
    elif u < 0.7:
        d = draw("faces", rng)
        n = len(d.boxes)
        q = rng.choice(["How many people are in this picture?", "Is anyone in this photo?", "How many of us are in this shot?"])
        a = f"There {'is' if n == 1 else 'are'} {n} {'person' if n == 1 else 'people'} in the picture."
        name, template = "detect_faces", "indirect/faces"
    elif u < 0.82:
        d = draw("photo", rng)
        guess = rng.choice(sorted(set(PHOTOS.values())))
        q = rng.choice([f"Is this a {guess}?", f"Is that a {guess} in the photo?"])
        a = f"Yes, it looks like a {d.label}." if guess == d.label else f"No, it looks like a {d.label}."
        name, template = "classify_image", "indirect/photo"
        call = ToolCall(name=name, arguments={"image": "image_1"}, id="call_1")
        result = result_for(name, call.arguments, d, {})
        msgs = [user_message(rng.choice(LOOK[:2]) + q, 1, 0), *call_turns([call], [result]), Message(role="assistant", content=a)]
        return Example(idx, "natural_indirect", template, msgs, [d], expected=[{"name": name, "arguments": {"image": ["image_1"], "top_k": [""]}}], results=[result])
    elif u < 0.92:
        d = draw("shapes", rng)
        shape = rng.choice(["circle", "square", "triangle"])
        found = [lab for lab, _ in d.boxes if lab.endswith(shape)]
        q = rng.choice([f"Are there any {shape}s in this?", f"Do you see a {shape} here?"])
        a = f"Yes: {', '.join(found)}." if found else f"No, I don't see a {shape}."
        name, template = "detect_objects", "indirect/shapes"
    else:
        q, query = rng.choice(MEMORY_QUESTIONS)
        note = P.NOTES[P.QUERIES.index(query)]
        call = ToolCall(name="search_memory", arguments={"query": query}, id="call_1")
        result = result_for("search_memory", call.arguments, None, {"note": note})
        msgs = [user_message(q, 0, 0), *call_turns([call], [result]), Message(role="assistant", content=f"You told me: {note}.")]
        return Example(idx, "natural_indirect", "indirect/memory", msgs, expected=[{"name": "search_memory", "arguments": {"query": [query], "k": [""]}}],
                       results=[result])
    call, result = _said(name, d)
    text = (rng.choice(LOOK) if name == "read_text" else rng.choice(LOOK[:2])) + q
    msgs = [user_message(text, 1, 0), *call_turns([call], [result]), Message(role="assistant", content=a)]
    allowed = {"image": ["image_1"]} | ({"labels": [""], "threshold": [""]} if name == "detect_objects" else {})
    return Example(idx, "natural_indirect", template, msgs, [d], expected=[{"name": name, "arguments": allowed}], results=[result])


def _phrase_words(template: str) -> set[str]:
    intent, _, j = template.rpartition("/")
    phrase = P.EXTRA_PHRASINGS[intent][int(j[1:])] if j.startswith("x") else P.PHRASINGS[intent][int(j)]
    return set(re.findall(r"[a-z]{5,}", re.sub(r"\{\w+\}", " ", phrase)))


def typo_in(rng: random.Random, text: str, words: set[str]) -> str:
    """A slip (a dropped, swapped or doubled letter) in one of `words` as it occurs in `text`."""
    return P.slip(rng, text, [m for m in re.finditer(r"[a-z]{5,}", text) if m.group() in words])


def _retext(ex: Example, text: str, kind: str) -> Example:
    first = ex.messages[0].model_copy(update={"content": text})
    return Example(ex.id, kind, ex.template, [first, *ex.messages[1:]], ex.images, ex.audio, ex.expected, ex.results)


def generate(n: int, seed: int = 0) -> list[Example]:
    """`n` natural built-in conversations; the same (n, seed) always gives the same ones."""
    rng = random.Random(f"natural/{seed}")
    out = []
    for i, kind in enumerate(rng.choices(list(KINDS), list(KINDS.values()), k=n)):
        idx = f"natural-{i:05d}"
        if kind == "indirect":
            out.append(indirect(rng, idx))
            continue
        ex = single(rng, rng.choice(SINGLE_INTENTS), False, idx)
        text = ex.messages[0].content
        if kind == "typo":
            typed = typo_in(rng, text, _phrase_words(ex.template))
            for _ in range(2 if rng.random() < 0.3 else 0):
                typed = typo_in(rng, typed, _phrase_words(ex.template))
            out.append(_retext(ex, typed, "natural_typo"))
        elif kind == "sentences":
            tool = ex.expected[0]["name"]
            before = rng.choice(CONTEXT.get(tool, GENERIC_CONTEXT) + GENERIC_CONTEXT)
            if rng.random() < 0.4:
                text = (text if text[-1] in ".!?" else text + ".") + " " + rng.choice(AFTER)
            out.append(_retext(ex, f"{before} {text}", "natural_sentences"))
        elif rng.random() < 0.2:  # a closing on its own
            q, a = rng.choice(THANKS)
            out.append(Example(idx, "natural_closing", "closing/alone", [Message(role="user", content=q), Message(role="assistant", content=a)]))
        else:
            q, a = rng.choice(THANKS)
            msgs = [*ex.messages, Message(role="user", content=q), Message(role="assistant", content=a)]
            out.append(Example(idx, "natural_closing", f"closing/{ex.template}", msgs, ex.images, ex.audio, ex.expected, ex.results))
    return out
