"""Regenerates the held-out suites and their media, deterministically.

    .venv/bin/python recipes/suites/heldout_src/make_heldout.py

Writes, next to this folder's parent (recipes/suites/):
  heldout-natural-builtins.jsonl  (built-in tools, with drawn / sample images and WAV clips)
  heldout-open-world.jsonl        (items that bring their own tool schemas)
  heldout-general.jsonl           (questions that need no tool, with short accepted answers)
  media/heldout/*.png, *.wav

The request texts live in builtins_items.py, openworld_items.py and general_items.py; this file
draws the media, fills every optional argument nobody asked for with [""], and writes the lines.
Written independently of the training-data generator (none of its files were read).
"""

from __future__ import annotations

import json
import math
import sys
import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
SUITES = HERE.parent
MEDIA = SUITES / "media" / "heldout"
REL = "media/heldout"
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # keep heldout_src free of __pycache__

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]


def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.ImageFont:
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    name += "-Bold.ttf" if bold else ".ttf"
    for d in FONT_DIRS:
        if (d / name).exists():
            return ImageFont.truetype(str(d / name), size)
    return ImageFont.load_default(size=size)


def centered(d: ImageDraw.ImageDraw, y: int, text: str, f, fill, width: int) -> None:
    w = d.textlength(text, font=f)
    d.text(((width - w) / 2, y), text, font=f, fill=fill)


# --------------------------------------------------------------------------- drawn images

def sign(lines, *, size=(420, 420), bg="white", fg="black", border=None, sizes=None, bold=True):
    """A flat sign: centered lines of text, optional colored border."""
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    if border:
        d.rectangle([6, 6, size[0] - 7, size[1] - 7], outline=border, width=14)
    sizes = sizes or [44] * len(lines)
    fonts = [font(s, bold=bold) for s in sizes]
    total = sum(s + 18 for s in sizes) - 18
    y = (size[1] - total) // 2
    for text, f, s in zip(lines, fonts, sizes):
        centered(d, y, text, f, fg, size[0])
        y += s + 18
    return im


def no_parking():
    im = Image.new("RGB", (420, 520), "white")
    d = ImageDraw.Draw(im)
    d.rectangle([6, 6, 413, 513], outline="black", width=6)
    d.ellipse([110, 30, 310, 230], outline=(200, 20, 20), width=18)
    centered(d, 78, "P", font(110, bold=True), "black", 420)
    d.line([150, 70, 270, 190], fill=(200, 20, 20), width=18)
    y = 260
    for text, s in [("NO PARKING", 46), ("8 AM - 6 PM", 36), ("MON - FRI", 36), ("TOW-AWAY ZONE", 30)]:
        centered(d, y, text, font(s, bold=True), (200, 20, 20) if s == 46 else "black", 420)
        y += s + 22
    return im


def speed_limit():
    im = Image.new("RGB", (340, 440), (40, 40, 40))
    d = ImageDraw.Draw(im)
    d.rectangle([14, 14, 325, 425], fill="white", outline="black", width=6)
    centered(d, 50, "SPEED", font(54, bold=True), "black", 340)
    centered(d, 118, "LIMIT", font(54, bold=True), "black", 340)
    centered(d, 200, "35", font(170, bold=True), "black", 340)
    return im


def street_corner():
    im = Image.new("RGB", (520, 420), (150, 190, 230))
    d = ImageDraw.Draw(im)
    d.rectangle([250, 150, 268, 420], fill=(90, 90, 90))
    d.rectangle([60, 60, 460, 130], fill=(20, 110, 60), outline="white", width=4)
    centered(d, 72, "MAPLE AVE", font(44, bold=True), "white", 520)
    d.rectangle([120, 160, 400, 220], fill=(20, 110, 60), outline="white", width=4)
    centered(d, 168, "ELM ST", font(38, bold=True), "white", 520)
    d.rectangle([0, 380, 520, 420], fill=(80, 80, 80))
    return im


def paper(lines, *, size, mono=False, title=None, title_size=30, body=22, pad=28, line_gap=10, bg=(250, 248, 240)):
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    y = pad
    if title:
        centered(d, y, title, font(title_size, bold=True, mono=mono), "black", size[0])
        y += title_size + 2 * line_gap
    f = font(body, mono=mono)
    for text in lines:
        if text == "---":
            d.line([pad, y + body // 2, size[0] - pad, y + body // 2], fill="gray", width=2)
        elif "\t" in text:
            left, right = text.split("\t")
            d.text((pad, y), left, font=f, fill="black")
            d.text((size[0] - pad - d.textlength(right, font=f), y), right, font=f, fill="black")
        else:
            d.text((pad, y), text, font=f, fill="black")
        y += body + line_gap
    return im


def receipt_grocery():
    return paper(["04/12/2025  17:42", "---", "Bananas 1.2 kg\t2.38", "Whole milk 2L\t3.49", "Sourdough loaf\t4.75",
                  "Eggs (12)\t5.20", "Cheddar 400g\t6.15", "Apples\t1.50", "---", "TOTAL\t$23.47", "VISA ****3391", "",
                  "Thank you for shopping!"],
                 size=(360, 600), mono=True, title="GREEN LEAF MARKET", title_size=26, body=20)


def receipt_cafe():
    return paper(["Table 7   Server: Ana", "---", "Oat latte\t4.50", "Almond croissant\t3.25", "Tip\t1.35", "---",
                  "TOTAL\t$9.10", "", "See you soon!"],
                 size=(340, 420), mono=True, title="BLUE DOOR CAFE", title_size=26, body=20)


def invoice():
    return paper(["Harbor Lights Design Studio", "221 Quay Street, Portland", "", "Bill to: Okafor & Lane LLP",
                  "Invoice date: 13 February 2025", "Due date: 15 March 2025", "---", "Logo redesign\t$950.00",
                  "Brand guide (PDF)\t$330.00", "---", "Amount due\t$1,280.00", "", "Please pay by bank transfer."],
                 size=(560, 620), title="INVOICE #1042", body=22)


def letter():
    return paper(["To: all project staff", "From: Facilities", "", "The planning meeting has been moved", "to Thursday at 10 AM.",
                  "It will take place in room 4B", "on the fourth floor.", "", "Coffee will be provided."],
                 size=(560, 460), title="MEMO", body=24)


def medicine_label():
    im = paper(["IBUPROFEN 200 mg", "Take 2 tablets every 6 hours", "with food or milk.", "Do not exceed 8 tablets",
                "in 24 hours.", "---", "Rx 448120   Qty: 40", "Keep out of reach of children."],
               size=(520, 380), title="PINE STREET PHARMACY", title_size=26, body=24, bg=(255, 255, 255))
    ImageDraw.Draw(im).rectangle([3, 3, 516, 376], outline=(30, 80, 160), width=6)
    return im


def departures():
    im = Image.new("RGB", (640, 360), (10, 10, 30))
    d = ImageDraw.Draw(im)
    f, fb = font(24, mono=True), font(26, bold=True, mono=True)
    d.text((20, 18), "DEPARTURES", font=fb, fill=(255, 200, 0))
    d.text((20, 62), "TIME  DESTINATION    PLAT  STATUS", font=f, fill=(180, 180, 180))
    rows = [("10:15", "BRISTOL", "3", "ON TIME"), ("10:22", "OXFORD", "7", "DELAYED"), ("10:40", "CARDIFF", "1", "ON TIME"),
            ("10:55", "READING", "5", "CANCELLED"), ("11:05", "BATH SPA", "3", "ON TIME")]
    for i, (t, dest, p, st) in enumerate(rows):
        d.text((20, 110 + 46 * i), f"{t} {dest:<14} {p:>4}  {st}", font=f, fill=(255, 200, 0))
    return im


def menu_board():
    im = Image.new("RGB", (560, 440), (35, 45, 40))
    d = ImageDraw.Draw(im)
    centered(d, 24, "TODAY'S SPECIALS", font(38, bold=True), "white", 560)
    y = 100
    for text in ["SOUP OF THE DAY: TOMATO BASIL  $6", "GRILLED CHEESE  $8", "LEMON TART  $5", "ICED TEA  $3"]:
        centered(d, y, text, font(26), (240, 240, 200), 560)
        y += 70
    return im


def business_card():
    im = Image.new("RGB", (600, 340), (245, 245, 250))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 18, 340], fill=(40, 70, 140))
    d.text((50, 50), "Dana Whitfield", font=font(40, bold=True), fill="black")
    d.text((50, 105), "Senior Architect", font=font(26), fill=(60, 60, 60))
    d.text((50, 150), "Northwind Studio", font=font(26), fill=(60, 60, 60))
    d.text((50, 220), "dana@northwind.example", font=font(24), fill="black")
    d.text((50, 260), "+1 555 0142", font=font(24), fill="black")
    return im


def ticket():
    im = Image.new("RGB", (620, 260), (250, 230, 120))
    d = ImageDraw.Draw(im)
    d.rectangle([8, 8, 611, 251], outline="black", width=4)
    d.line([460, 8, 460, 251], fill="black", width=2)
    d.text((30, 30), "THE MIDNIGHT ECHOES", font=font(32, bold=True), fill="black")
    d.text((30, 90), "Riverside Hall  -  Sat 21 June", font=font(24), fill="black")
    d.text((30, 140), "ROW F   SEAT 12", font=font(30, bold=True), fill="black")
    d.text((30, 195), "DOORS 7 PM", font=font(24), fill="black")
    d.text((480, 110), "ADMIT", font=font(26, bold=True), fill="black")
    d.text((495, 145), "ONE", font=font(26, bold=True), fill="black")
    return im


def whiteboard():
    im = Image.new("RGB", (560, 400), (252, 252, 252))
    d = ImageDraw.Draw(im)
    d.rectangle([4, 4, 555, 395], outline=(120, 120, 120), width=8)
    d.text((40, 30), "TO DO", font=font(40, bold=True), fill=(20, 40, 160))
    for i, t in enumerate(["1. call plumber", "2. buy milk", "3. pay rent", "4. water the plants"]):
        d.text((50, 110 + 62 * i), t, font=font(32), fill=(20, 40, 160))
    return im


def shapes():
    im = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(im)
    for x, y, r in [(90, 90, 45), (250, 130, 35), (480, 90, 50), (140, 330, 55), (400, 360, 40)]:
        d.ellipse([x - r, y - r, x + r, y + r], fill=(220, 30, 30))
    for x, y, s in [(330, 220, 70), (520, 280, 60), (40, 200, 50)]:
        d.rectangle([x, y, x + s, y + s], fill=(30, 60, 220))
    return im


def parking_lot():
    """A top view of a small lot with a few boxy cars (a drawing, for counting requests)."""
    im = Image.new("RGB", (640, 400), (70, 70, 75))
    d = ImageDraw.Draw(im)
    for i in range(7):
        x = 20 + 88 * i
        d.line([x, 20, x, 170], fill="white", width=4)
        d.line([x, 230, x, 380], fill="white", width=4)
    cars = [(0, 0, (200, 30, 30)), (2, 0, (30, 90, 200)), (3, 0, (230, 230, 230)), (5, 0, (20, 20, 20)), (1, 1, (240, 200, 30)),
            (4, 1, (60, 160, 70))]
    for slot, row, color in cars:
        x, y = 32 + 88 * slot, 35 if row == 0 else 245
        d.rounded_rectangle([x, y, x + 64, y + 122], radius=14, fill=color, outline="black", width=2)
        d.rectangle([x + 10, y + 18, x + 54, y + 40], fill=(150, 200, 230))
        d.rectangle([x + 10, y + 84, x + 54, y + 102], fill=(150, 200, 230))
    return im


def hours_sign():
    return sign(["OPENING HOURS", "Mon-Fri  9:00 - 17:00", "Sat  10:00 - 14:00", "Sun  CLOSED"], size=(480, 360),
                bg=(255, 255, 255), fg=(20, 20, 20), border=(20, 20, 20), sizes=[36, 30, 30, 30])


# --------------------------------------------------------------------------- photos

def sk(name: str) -> Image.Image:
    from skimage import data
    arr = getattr(data, name)()
    if arr.dtype == bool:
        arr = (arr * 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def sklearn_photo(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image
    return Image.fromarray(load_sample_image(name)).convert("RGB")


def side_by_side(a: Image.Image, b: Image.Image, height: int) -> Image.Image:
    a = a.resize((round(a.width * height / a.height), height))
    b = b.resize((round(b.width * height / b.height), height))
    out = Image.new("RGB", (a.width + b.width + 20, height), "white")
    out.paste(a, (0, 0))
    out.paste(b, (a.width + 20, 0))
    return out


IMAGES = {
    "no_parking": no_parking,
    "speed_limit": speed_limit,
    "street_corner": street_corner,
    "wet_floor": lambda: sign(["CAUTION", "WET FLOOR"], bg=(250, 210, 20), border="black", sizes=[56, 50]),
    "closed_sign": lambda: sign(["SORRY,", "WE'RE CLOSED", "Back at 2:30 PM"], size=(460, 320), bg=(180, 20, 30), fg="white",
                                sizes=[40, 46, 32]),
    "wifi_sign": lambda: sign(["Free WiFi", "Network: CafeGuest", "Password: sunflower42"], size=(520, 300), bg=(235, 245, 255),
                              border=(40, 90, 170), sizes=[42, 30, 30]),
    "no_swimming": lambda: sign(["DANGER", "NO SWIMMING", "Strong currents"], size=(440, 340), bg="white", fg=(190, 0, 0),
                                border=(190, 0, 0), sizes=[50, 44, 30]),
    "hours_sign": hours_sign,
    "receipt_grocery": receipt_grocery,
    "receipt_cafe": receipt_cafe,
    "invoice": invoice,
    "memo": letter,
    "medicine_label": medicine_label,
    "departures": departures,
    "menu_board": menu_board,
    "business_card": business_card,
    "ticket": ticket,
    "whiteboard": whiteboard,
    "shapes": shapes,
    "parking_lot": parking_lot,
    "astronaut": lambda: sk("astronaut"),
    "cameraman": lambda: sk("camera"),
    "cat": lambda: sk("chelsea"),
    "coffee": lambda: sk("coffee"),
    "rocket": lambda: sk("rocket"),
    "page": lambda: sk("page"),
    "china": lambda: sklearn_photo("china.jpg"),
    "flower": lambda: sklearn_photo("flower.jpg"),
    "two_faces": lambda: side_by_side(sk("astronaut"), sk("camera"), 384),
    "cat_and_coffee": lambda: side_by_side(sk("chelsea"), sk("coffee"), 300),
}


# --------------------------------------------------------------------------- audio

def write_wav(path: Path, kind: str, seconds: float = 2.0, rate: int = 16000) -> None:
    """Short synthetic clips (tones, chirps, noise); the requests only need an audio attachment."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    t = np.arange(int(seconds * rate)) / rate
    if kind == "tone":
        x = 0.4 * np.sin(2 * math.pi * 440 * t)
    elif kind == "chirp":
        x = 0.4 * np.sin(2 * math.pi * (200 + 300 * t) * t)
    elif kind == "beeps":
        x = 0.4 * np.sin(2 * math.pi * 660 * t) * (np.sin(2 * math.pi * 3 * t) > 0)
    else:  # murmur: band-limited noise with a syllable-like envelope
        x = np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, mode="same")
        x *= 0.3 * (0.5 + 0.5 * np.sin(2 * math.pi * 4 * t)) / max(np.abs(x).max(), 1e-9)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


AUDIO = {"voice_memo": ("murmur", 2.5), "voicemail": ("murmur", 3.0), "lecture_clip": ("chirp", 2.0),
         "meeting_clip": ("beeps", 2.0), "radio_clip": ("tone", 1.5)}


PHOTOS = {"astronaut", "cameraman", "cat", "coffee", "rocket", "china", "flower", "two_faces", "cat_and_coffee"}


def image_file(name: str) -> str:
    """Photos are stored as JPEG (smaller), drawings and the text scan as PNG (sharp text)."""
    return f"{name}.jpg" if name in PHOTOS else f"{name}.png"


def make_media() -> None:
    MEDIA.mkdir(parents=True, exist_ok=True)
    for name, fn in IMAGES.items():
        im = fn()
        if name in PHOTOS:
            im.save(MEDIA / image_file(name), quality=90)
        else:
            im.save(MEDIA / image_file(name), optimize=True)
    for name, (kind, secs) in AUDIO.items():
        write_wav(MEDIA / f"{name}.wav", kind, secs)


def image_size(name: str) -> tuple[int, int]:
    with Image.open(MEDIA / image_file(name)) as im:
        return im.size


# --------------------------------------------------------------------------- expected calls

def props_of(tool: dict) -> dict:
    return tool["function"]["parameters"].get("properties", {})


def fill_call(name: str, given: dict, tools: list[dict]) -> dict:
    """One expected call: given values (scalar or list of allowed values), every other property [""]."""
    tool = next((t for t in tools if t["function"]["name"] == name), None)
    if tool is None:
        raise KeyError(f"{name} is not among the item's tools")
    props = props_of(tool)
    unknown = set(given) - set(props)
    if unknown:
        raise KeyError(f"{name}: unknown arguments {sorted(unknown)}")
    args = {}
    for p in props:
        v = given.get(p, [""])
        args[p] = v if isinstance(v, list) else [v]  # a list is the allowed values; array values go in [[...]]
    return {"name": name, "arguments": args}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    import builtins_items
    import general_items
    import openworld_items

    make_media()
    builtin_tools = json.loads((HERE / "builtin_tools.json").read_text())

    rows = []
    for i, it in enumerate(builtins_items.items(image_size)):
        row = {"id": f"heldout-builtins-{i:03d}", "prompt": it["prompt"],
               "images": [f"{REL}/{image_file(n)}" for n in it.get("images", [])]}
        if it.get("audio"):
            row["audio"] = [f"{REL}/{n}.wav" for n in it["audio"]]
        row["expected"] = [fill_call(n, a, builtin_tools) for n, a in it["calls"]]
        row["kind"] = it["kind"]
        rows.append(row)
    write_jsonl(SUITES / "heldout-natural-builtins.jsonl", rows)

    rows = []
    for i, it in enumerate(openworld_items.items()):
        tools = [openworld_items.TOOLS[n] for n in it["tools"]]
        rows.append({"id": f"heldout-open-{i:03d}", "prompt": it["prompt"], "images": [], "tools": tools,
                     "expected": [fill_call(n, a, tools) for n, a in it["calls"]], "kind": it["kind"]})
    write_jsonl(SUITES / "heldout-open-world.jsonl", rows)

    rows = [{"id": f"heldout-general-{i:03d}", "prompt": q, "images": [], "expected": [], "kind": "general", "answers": a}
            for i, (q, a) in enumerate(general_items.items())]
    write_jsonl(SUITES / "heldout-general.jsonl", rows)


if __name__ == "__main__":
    main()
