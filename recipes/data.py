# Launch: .venv/bin/python -m mmagent.recipes.data --out data/tools --seed 0
"""The data generator: procedural multimodal tool-use conversations (GPT4Tools-style, arXiv 2305.18752).

Every example is a conversation of `mmagent.protocol.chat.Message`s: a user turn (text + attached images or
audio, referred to as `image_1`, `audio_1`... in attachment order), the assistant's tool call(s),
the tool's result, possibly more calls, and a final answer that uses the results. Kinds:
single calls (all built-in tools, with and without optional arguments), chains (detect -> crop ->
read_text and others; the later call uses the earlier result; hand-written per pair, and composed
from a seen phrasing of the first tool + a follow-up of the second), independent pairs (two calls in
one step), memory store/search, questions answered with no tool, and requests no tool can serve
(declined, nothing called). Tool results are simulated from what the generator drew, so they are
true of the image; what the generator knows per tool (drawings, slots, simulated result checked
against the tool's output model, answer) is its `ToolScenario` in `recipes/scenarios.py`.

Splits (deterministic from the seed):
- train / validation: seen phrasings, seen tool combinations (validation has fresh fillers/images);
- test-unseen-phrasings: only phrasings held out of training (`phrasings.py`), single steps;
- test-unseen-combinations: only chains/pairs of tools never combined in training.
The two test splits are also exported as eval suites (`recipes/eval.py` format) with their images.
"""

from __future__ import annotations

import argparse
import json
import random
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmagent.recipes import phrasings as P
from mmagent.recipes.drawings import Drawing, draw
from mmagent.recipes.scenarios import SCENARIOS, Slots

from mmagent.protocol.chat import Message, ToolCall
from mmagent.protocol.toolcall import format_tool_result

HOLDOUT_FRACTION = 0.2
SPLITS = ("train", "validation", "test-unseen-phrasings", "test-unseen-combinations")
IMAGE_REFS_ONE = ["this image", "the image", "this photo", "the picture", "image_1", "my photo", "the attached image", "this pic"]
IMAGE_REFS_TWO = {1: ["the first image", "image_1", "the first picture", "the first photo"], 2: ["the second image", "image_2", "the second picture", "the other photo"]}
AUDIO_REFS = ["this recording", "the audio", "audio_1", "the voice memo", "this clip", "the attached audio"]
SPEECH = ["turn left at the next corner", "the meeting starts at noon", "please buy some bread", "call me back tomorrow", "the package arrived today", "remember to water the plants"]
# Tool pairs only ever seen in the unseen-combinations test split.
HELDOUT_PAIRS = {("detect_faces", "crop_image"), ("generate_image", "resize_image"), ("transcribe_audio", "remember"),
                 ("read_text", "generate_image"), ("classify_image", "detect_faces"), ("resize_image", "read_text")}


@dataclass
class Example:
    """One conversation plus what a correct model must call (for the eval suites)."""

    id: str
    kind: str
    template: str
    messages: list[Message]
    images: list[Drawing] = field(default_factory=list)
    audio: list[str] = field(default_factory=list)  # the spoken sentence of each audio attachment
    expected: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "arguments": {arg: [allowed]}}]
    results: list[dict[str, Any]] = field(default_factory=list)  # simulated output of each expected call
    # The tool schemas this conversation offers (open-world data, `recipes/open_world.py`); None: the built-ins.
    tools: list[dict[str, Any]] | None = None


# --------------------------------------------------------------------------- split bookkeeping


def heldout_phrasings(intent: str) -> set[int]:
    """Indices of `PHRASINGS[intent]` reserved for the unseen-phrasings test (fixed, seed-free)."""
    n = len(P.PHRASINGS[intent])
    rng = random.Random(f"holdout/{intent}")
    return set(rng.sample(range(n), max(2, round(n * HOLDOUT_FRACTION))))


def heldout_items(name: str, n: int) -> set[int]:
    rng = random.Random(f"holdout/{name}")
    return set(rng.sample(range(n), max(2, round(n * HOLDOUT_FRACTION))))


def pick_phrasing(rng: random.Random, intent: str, unseen: bool, extra: bool = False) -> tuple[str, str]:
    """A core phrasing and its template id: held-out ones if `unseen`, else seen ones (plus the
    training-only `EXTRA_PHRASINGS` if `extra`; the unseen-combinations test leaves them out so that
    its items stay as they were shipped)."""
    held = heldout_phrasings(intent)
    pool = [(P.PHRASINGS[intent][i], f"{intent}/{i}") for i in range(len(P.PHRASINGS[intent])) if (i in held) == unseen]
    if extra and not unseen:
        pool += [(p, f"{intent}/x{j}") for j, p in enumerate(P.EXTRA_PHRASINGS.get(intent, []))]
    return rng.choice(pool)


def wrap(rng: random.Random, core: str) -> str:
    """Opener + core phrasing + closer, capitalised like a person would type it."""
    opener, closer = rng.choice(P.OPENERS), rng.choice(P.CLOSERS)
    text = opener + core
    if closer and text.endswith("?"):
        text = text[:-1] + closer + "?"
    else:
        text = text.rstrip(".") + closer
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- simulated tool results


# Each built-in tool's simulation, answer and slots live in its `ToolScenario` (`recipes/scenarios.py`).


def result_for(name: str, args: dict[str, Any], d: Drawing | None, extra: dict[str, Any]) -> dict[str, Any]:
    """What the real tool would return for the drawing (true by construction, checked against the
    tool's output model); KeyError for a tool with no scenario."""
    return SCENARIOS[name].result(args, d, extra)


def answer_for(name: str, result: dict[str, Any], d: Drawing | None) -> str:
    """A final answer that uses the tool result correctly."""
    return SCENARIOS[name].answer(result, d)


# --------------------------------------------------------------------------- single calls


def _ref_images(rng: random.Random, n_images: int) -> tuple[str, int]:
    """A phrase for the target image and its 1-based index."""
    if n_images == 1:
        return rng.choice(IMAGE_REFS_ONE), 1
    idx = rng.choice([1, 2])
    return rng.choice(IMAGE_REFS_TWO[idx]), idx


def fill(rng: random.Random, intent: str, drawings: list[Drawing], target: int) -> Slots:
    sc = SCENARIOS[intent.split("+")[0]]
    s = Slots()
    if sc.takes_image:
        s.args["image"] = f"image_{target}"
        s.allowed["image"] = [f"image_{target}"]
    if sc.fill:
        sc.fill(rng, intent, s)
    return s


def user_message(text: str, n_images: int, n_audio: int) -> Message:
    return Message(role="user", content=text, images=[f"image_{i + 1}" for i in range(n_images)], audio=[f"audio_{i + 1}" for i in range(n_audio)])


def call_turns(calls: list[ToolCall], results: list[dict[str, Any]]) -> list[Message]:
    """The assistant's calls and one tool message per call (ids tie them together)."""
    msgs = [Message(role="assistant", tool_calls=calls)]
    msgs += [Message(role="tool", name=c.name, tool_call_id=c.id, content=format_tool_result(c.name, r)) for c, r in zip(calls, results)]
    return msgs


def single(rng: random.Random, intent: str, unseen: bool, idx: str) -> Example:
    tool = intent.split("+")[0]
    sc = SCENARIOS[tool]
    phrase, template = pick_phrasing(rng, intent, unseen, extra=not unseen)
    drawings: list[Drawing] = []
    if sc.takes_image:
        n_images = 2 if rng.random() < 0.2 else 1
        drawings = [draw(rng.choice(sc.kinds), rng) for _ in range(n_images)]
    ref, target = _ref_images(rng, len(drawings)) if drawings else ("", 0)
    s = fill(rng, intent, drawings, target)
    speech = rng.choice(SPEECH) if sc.takes_audio else ""
    note = sc.note_for(s.args) if sc.note_for else ""  # the note the query finds
    text = wrap(rng, phrase.format(img=ref, aud=rng.choice(AUDIO_REFS), **s.text))
    d = drawings[target - 1] if drawings else None
    extra = {"new_image": f"image_{len(drawings) + 1}", "speech": speech, "note": note, "memory_id": rng.randint(1, 99)}
    result = sc.result(s.args, d, extra)
    call = ToolCall(name=tool, arguments=s.args, id="call_1")
    msgs = [user_message(text, len(drawings), 1 if speech else 0), *call_turns([call], [result])]
    msgs.append(Message(role="assistant", content=sc.answer(result, d)))
    return Example(idx, "single", template, msgs, drawings, [speech] if speech else [], [{"name": tool, "arguments": s.allowed}], [result])


# --------------------------------------------------------------------------- chains and pairs

# (first tool, second tool) -> phrasings; `{img}` is the input image. The second call uses the
# first call's output (a new image id, a box, or text), so it can only be emitted after the result.
CHAINS: dict[tuple[str, str], list[str]] = {
    ("detect_objects", "crop_image"): ["find the objects in {img} and crop the first one", "detect objects in {img}, then cut out the first object", "locate the things in {img} and give me a crop of the first", "run detection on {img} and crop out the first detected object"],
    ("detect_faces", "draw_boxes"): ["find the faces in {img} and draw boxes around them", "detect faces in {img} then mark them with boxes", "outline every face you find in {img}", "locate the faces in {img} and draw their boxes on it"],
    ("detect_objects", "draw_boxes"): ["detect the objects in {img} and draw their boxes", "find all objects in {img}, then outline them", "mark every detected object in {img} with a rectangle", "run the detector on {img} and annotate it with the boxes"],
    ("crop_image", "read_text"): ["crop {img} to {box} and read the text there", "cut out {box} from {img}, then tell me what it says", "read the writing inside {box} of {img} after cropping it", "crop the region {box} of {img} and OCR it"],
    ("generate_image", "classify_image"): ["generate {prompt} and then classify the result", "draw {prompt}, then tell me what the classifier thinks it is", "make a picture of {prompt} and check what it looks like to the classifier", "create an image of {prompt} and label it"],
    ("read_text", "remember"): ["read the text in {img} and remember it", "OCR {img} and save the text to memory", "tell me what {img} says and store it for later", "read {img} and make a note of what it says"],
    ("classify_image", "remember"): ["classify {img} and remember what it is", "figure out what {img} shows and save that in memory", "label {img} and store the label for later"],
    ("transcribe_audio", "generate_image"): ["listen to {aud} and draw what it describes", "transcribe {aud} and generate an image of it", "turn {aud} into text and then make a picture of that"],
    ("detect_faces", "crop_image"): ["find the faces in {img} and crop the first one", "detect faces in {img}, then cut out the first face", "locate the faces in {img} and give me a crop of the first", "crop out the first face you detect in {img}"],
    ("generate_image", "resize_image"): ["generate {prompt} and resize it to {w}x{h}", "draw {prompt}, then scale it to {w} by {h}", "make a picture of {prompt} and shrink it to {w}x{h}"],
    ("transcribe_audio", "remember"): ["transcribe {aud} and remember what it says", "listen to {aud} and save the words to memory", "turn {aud} into text and store it for later"],
    ("read_text", "generate_image"): ["read the text in {img} and draw what it says", "OCR {img} and generate an image of the words", "find out what {img} says and make a picture of it"],
    ("classify_image", "detect_faces"): ["classify {img} and also find any faces in it", "tell me what {img} is and detect the faces in it", "label {img}, then look for faces in it"],
    ("resize_image", "read_text"): ["resize {img} to {w}x{h} and read the text in it", "scale {img} to {w} by {h}, then OCR it", "make {img} {w}x{h} and tell me what it says"],
}


def _second_args(a: str, b: str, r1: dict[str, Any], first_args: dict[str, Any], s: Slots) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Arguments of the second call, derived from the first call's result."""
    img = r1.get("image", first_args.get("image", "image_1"))
    as_second = SCENARIOS[b].as_second
    if as_second is None:
        raise KeyError(b)
    return as_second(img, r1, first_args, s)


def chain(rng: random.Random, pair: tuple[str, str], idx: str) -> Example:
    """A hand-written chain phrasing of `pair` (`CHAINS`)."""
    i = rng.randrange(len(CHAINS[pair]))
    phrase = CHAINS[pair][i]
    kind = SCENARIOS[pair[0]].chain_kind
    return _chain_example(rng, pair, kind, lambda slots: phrase.format(img=rng.choice(IMAGE_REFS_ONE), aud=rng.choice(AUDIO_REFS), **slots),
                          idx, f"chain/{pair[0]}>{pair[1]}/{i}")


# Composed chains: a seen single-step phrasing of the first tool joined to a follow-up of the
# second (`phrasings.FOLLOW_UPS`). They cover every pair whose second tool can use the first one's
# output (a new image, the same image, boxes, or text) except the held-out ones, so the model
# learns "do the first part, read its result, then do the second" rather than a fixed list of pairs.
def _having(role: str) -> tuple[str, ...]:
    return tuple(name for name, sc in SCENARIOS.items() if getattr(sc, role))


IMAGE_MAKERS = _having("makes_image")  # generate_image, crop_image, resize_image
DETECTORS = _having("finds_boxes")  # detect_faces, detect_objects
ANALYZERS = _having("analyzes")  # read_text, detect_faces, detect_objects, classify_image
BOX_TAKERS = _having("takes_boxes")  # crop_image, draw_boxes
TEXT_MAKERS = _having("says_text")  # read_text, classify_image, transcribe_audio
TEXT_TAKERS = _having("takes_text")  # generate_image, remember, search_memory
COMPOSED_PAIRS: list[tuple[str, str]] = sorted(
    ({(a, b) for a in IMAGE_MAKERS + ANALYZERS for b in ANALYZERS + ("resize_image",) if a != b}
     | {(a, b) for a in DETECTORS for b in BOX_TAKERS}
     | {(a, b) for a in TEXT_MAKERS for b in TEXT_TAKERS}
     | {(a, "crop_image") for a in IMAGE_MAKERS if a != "crop_image"})  # crop a made image to a box the user gives
    - HELDOUT_PAIRS - {p[::-1] for p in HELDOUT_PAIRS})  # never combined, in either order


def composed_chain(rng: random.Random, pair: tuple[str, str], idx: str) -> Example:
    a, b = pair
    sa, sb = SCENARIOS[a], SCENARIOS[b]
    if sa.finds_boxes and sb.takes_boxes:
        kind = sa.chain_kind  # the detector must find something to crop or outline
    elif sa.takes_image:
        kind = rng.choice(sa.kinds + sb.kinds)
    else:
        kind = None
    phrase, template = pick_phrasing(rng, a, unseen=False, extra=True)
    follow = rng.choice(P.FOLLOW_UPS[sb.follow_up(sa) if sb.follow_up else b])
    join = rng.choice(P.CHAIN_JOIN)

    def text(slots: dict[str, str]) -> str:
        first = phrase.format(img=rng.choice(IMAGE_REFS_ONE), aud=rng.choice(AUDIO_REFS), **slots).rstrip("?.")
        return join.format(x=first, y=follow.format(**slots))

    return _chain_example(rng, pair, kind, text, idx, f"composed/{template}>{b}")


def _chain_example(rng: random.Random, pair: tuple[str, str], kind: str | None, text: Callable[[dict[str, str]], str], idx: str, template: str) -> Example:
    """Two steps: call `a`, read its result, call `b` on what it produced, answer."""
    a, b = pair
    sa, sb = SCENARIOS[a], SCENARIOS[b]
    speech = rng.choice(SPEECH) if sa.takes_audio else ""
    d = draw(kind, rng) if kind else None
    drawings = [d] if d else []
    s = fill(rng, a, drawings, 1)
    # The second call's own slots (a size, a box inside the image the first call made), if it draws any.
    s_b = sb.chain_slots(rng, sa, s) if sb.chain_slots else s
    message = wrap(rng, text(s.text))
    extra = {"new_image": f"image_{len(drawings) + 1}", "speech": speech, "memory_id": rng.randint(1, 99)}
    r1 = sa.result(s.args, d, extra)
    args_b, allowed_b = _second_args(a, b, r1, s.args, s_b)
    extra2 = extra | {"new_image": f"image_{len(drawings) + (2 if 'image' in r1 else 1)}", "label": s.args.get("prompt", "")}
    r2 = sb.result(args_b, d, extra2)  # a crop/resize of a sign still reads as the sign
    c1, c2 = ToolCall(name=a, arguments=s.args, id="call_1"), ToolCall(name=b, arguments=args_b, id="call_2")
    msgs = [user_message(message, len(drawings), 1 if speech else 0), *call_turns([c1], [r1]), *call_turns([c2], [r2])]
    msgs.append(Message(role="assistant", content=sb.answer(r2, d)))
    expected = [{"name": a, "arguments": s.allowed}, {"name": b, "arguments": allowed_b}]
    return Example(idx, "chain", template, msgs, drawings, [speech] if speech else [], expected, [r1, r2])


# Independent pairs on two images: both calls in one step.
PAIR_TOOLS = ["read_text", "detect_faces", "classify_image", "detect_objects"]
PAIR_JOIN = ["{x} and {y}", "{x}, and also {y}", "{x}; then {y}", "first {x}, then {y}", "{x}. Also {y}"]


def pair(rng: random.Random, tools: tuple[str, str], unseen: bool, idx: str, extra: bool = False) -> Example:
    drawings = [draw(SCENARIOS[t].kinds[0], rng) for t in tools]
    made = iter(range(3, 5))  # ids of images the calls produce (crop/resize), after the two attachments
    parts, calls, results, expected = [], [], [], []
    for j, t in enumerate(tools, start=1):
        phrase, _ = pick_phrasing(rng, t, unseen, extra)
        ref = rng.choice(IMAGE_REFS_TWO[j])
        s = fill(rng, t, drawings, j)
        parts.append(phrase.format(img=ref, **s.text).rstrip("?"))
        r = SCENARIOS[t].result(s.args, drawings[j - 1], {"new_image": f"image_{next(made)}"} if SCENARIOS[t].makes_image else {})
        calls.append(ToolCall(name=t, arguments=s.args, id=f"call_{j}"))
        results.append(r)
        expected.append({"name": t, "arguments": s.allowed})
    text = wrap(rng, rng.choice(PAIR_JOIN).format(x=parts[0], y=parts[1]))
    answer = " ".join(SCENARIOS[c.name].answer(r, d) for c, r, d in zip(calls, results, drawings))
    msgs = [user_message(text, 2, 0), *call_turns(calls, results), Message(role="assistant", content=answer)]
    return Example(idx, "pair", f"pair/{tools[0]}+{tools[1]}", msgs, drawings, [], expected, results)


# --------------------------------------------------------------------------- no tool


def no_tool(rng: random.Random, unseen: bool, idx: str) -> Example:
    if rng.random() < 0.5:
        held = heldout_items("no_tool", len(P.NO_TOOL))
        i = rng.choice([i for i in range(len(P.NO_TOOL)) if (i in held) == unseen])
        q, a = P.NO_TOOL[i]
        kind, template = "no_tool", f"no_tool/{i}"
    else:
        held = heldout_items("unservable", len(P.UNSERVABLE))
        pool = [(*P.UNSERVABLE[i], f"unservable/{i}") for i in range(len(P.UNSERVABLE)) if (i in held) == unseen]
        if not unseen:
            pool += [(q, what, f"unservable/x{j}") for j, (q, what) in enumerate(P.EXTRA_UNSERVABLE)]
        q, what, template = rng.choice(pool)
        a = rng.choice(["Sorry, I can't {w}: none of my tools can do that.", "I'm not able to {w} with the tools I have.", "None of my tools can {w}, so I can't help with that one."]).format(w=what)
        kind = "unservable"
    msgs = [Message(role="user", content=q), Message(role="assistant", content=a)]
    return Example(idx, kind, template, msgs)


# --------------------------------------------------------------------------- the splits

SINGLE_INTENTS = sorted(P.PHRASINGS)
ALL_PAIRS = [(a, b) for a in PAIR_TOOLS for b in PAIR_TOOLS if a < b]
# Training pairs span more tools, in both orders, so that no tool is tied to one partner (with only
# the four PAIR_TOOLS, classify_image was only ever followed by detect_objects or read_text).
TRAIN_PAIRS = [(a, b) for a in PAIR_TOOLS + ["resize_image", "crop_image"] for b in PAIR_TOOLS + ["resize_image", "crop_image"]
               if a != b and (a, b) not in HELDOUT_PAIRS and (b, a) not in HELDOUT_PAIRS]


def sample(rng: random.Random, split: str, idx: str) -> Example:
    """One example of a split; the mixture favours single calls (the bulk of real traffic)."""
    if split == "test-unseen-combinations":
        held_chains = sorted(p for p in CHAINS if p in HELDOUT_PAIRS)
        held_pairs = [p for p in ALL_PAIRS if p in HELDOUT_PAIRS or p[::-1] in HELDOUT_PAIRS]
        if held_pairs and rng.random() < 0.3:
            return pair(rng, rng.choice(held_pairs), False, idx)
        return chain(rng, rng.choice(held_chains), idx)
    unseen = split == "test-unseen-phrasings"
    u = rng.random()
    if u < 0.14:
        return no_tool(rng, unseen, idx)
    if u < 0.21 and not unseen:
        return chain(rng, rng.choice(sorted(p for p in CHAINS if p not in HELDOUT_PAIRS)), idx)
    if u < 0.42 and not unseen:
        first = rng.choice(sorted({a for a, _ in COMPOSED_PAIRS}))  # by first tool: each one learns to go on
        return composed_chain(rng, rng.choice([p for p in COMPOSED_PAIRS if p[0] == first]), idx)
    if u < 0.52 and not unseen:
        return pair(rng, rng.choice(TRAIN_PAIRS), False, idx, extra=True)
    return single(rng, rng.choice(SINGLE_INTENTS), unseen, idx)


def generate(split: str, n: int, seed: int = 0) -> list[Example]:
    """`n` examples of one split; the same (split, n, seed) always gives the same examples."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rng = random.Random(f"{seed}/{split}")
    return [sample(rng, split, f"{split}-{i:05d}") for i in range(n)]


# --------------------------------------------------------------------------- writing


def _write_wav(path: Path, seconds: float = 0.5, rate: int = 16000) -> None:
    # Silence: the eval and training only need the attachment; the transcript is simulated.
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))


def save_media(ex: Example, root: Path) -> tuple[list[str], list[str]]:
    """Writes an example's images/audio under `root/media/` and returns their relative paths."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    images, audio = [], []
    for j, d in enumerate(ex.images, start=1):
        rel = f"media/{ex.id}-image_{j}.png"
        d.image.save(root / rel, optimize=True)
        images.append(rel)
    for j, _ in enumerate(ex.audio, start=1):
        rel = f"media/{ex.id}-audio_{j}.wav"
        _write_wav(root / rel)
        audio.append(rel)
    return images, audio


def to_record(ex: Example, images: list[str], audio: list[str]) -> dict[str, Any]:
    """A training line: the conversation + media paths (relative to the jsonl file), and its own
    tool schemas when it brings them (otherwise it is run with the built-in tools)."""
    rec = {"id": ex.id, "kind": ex.kind, "template": ex.template, "images": images, "audio": audio,
           "descriptions": [d.describe() for d in ex.images], "messages": [m.model_dump(exclude_defaults=True) for m in ex.messages]}
    if ex.tools is not None:  # the trainer renders the conversation's system turn with these (`tool_tuning.Conversation.tools`)
        rec["tools"] = ex.tools
    return rec


def to_suite_line(ex: Example, images: list[str], audio: list[str]) -> dict[str, Any]:
    """An eval-suite line (`recipes/eval.py`): the prompt, media, expected calls and their replayed results."""
    line = {"id": ex.id, "prompt": ex.messages[0].content, "images": images, "expected": ex.expected}
    if audio:
        line["audio"] = audio
    if ex.results:
        line["results"] = ex.results
    line["kind"] = ex.kind
    if ex.tools is not None:
        line["tools"] = ex.tools
    return line


def write_split(examples: list[Example], out: Path, name: str, suite: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.jsonl"
    convert: Callable = to_suite_line if suite else to_record
    with path.open("w") as f:
        for ex in examples:
            f.write(json.dumps(convert(ex, *save_media(ex, out)), ensure_ascii=False) + "\n")
    return path


DEFAULT_SIZES = {"train": 4000, "validation": 200, "test-unseen-phrasings": 120, "test-unseen-combinations": 60}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate the tool-use dataset and export the test suites.")
    ap.add_argument("--out", type=Path, default=Path("data/tools"))
    ap.add_argument("--suites", type=Path, default=None, help="also write the two test splits as eval suites here")
    ap.add_argument("--seed", type=int, default=0)
    for split, n in DEFAULT_SIZES.items():
        ap.add_argument(f"--n-{split}", type=int, default=n)
    a = ap.parse_args(argv)
    for split in SPLITS:
        n = getattr(a, f"n_{split.replace('-', '_')}")
        exs = generate(split, n, a.seed)
        print(write_split(exs, a.out, split, suite=False), len(exs))
        if a.suites and split.startswith("test-"):
            print(write_split(exs, a.suites, split.removeprefix("test-"), suite=True))


if __name__ == "__main__":
    main()
