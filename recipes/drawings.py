"""Images the data generator draws, each with the facts it knows to be true about it.

Kinds: signs and documents with text (PIL), cartoon faces, coloured shapes, sklearn digits, and
the photos that ship with skimage/sklearn (labelled with their ImageNet class). Every drawing is a
pure function of its `random.Random`, so a seed fixes the pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 224  # the encoder's input side (EfficientNet-Lite0)

WORDS = [
    "STOP", "EXIT", "OPEN", "CLOSED", "SALE", "PARKING", "NO ENTRY", "WELCOME", "CAFE", "PHARMACY", "HOTEL",
    "BUS STOP", "TAXI", "PUSH", "PULL", "DANGER", "QUIET", "LIBRARY", "BAKERY", "TICKETS", "TOILETS", "ONE WAY",
]
DOC_LINES = [
    "Invoice 2291", "Total: 45.20", "Meeting at 10am", "Room 204", "Call Anna", "Buy milk", "Due May 3",
    "Order #5512", "Hello world", "Chapter 1", "Menu: soup 4.50", "Gate B12", "Seat 14C", "Flight LH 402",
    "Dear John", "Thank you", "Page 7", "Exam notes", "Plan for Monday", "Pick up kids 3pm",
]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30), "black": (20, 20, 20)}
SHAPES = ["circle", "square", "triangle"]
# Photos shipped with skimage / sklearn and the ImageNet-style label each one shows.
PHOTOS = {
    "astronaut": "astronaut", "chelsea": "tabby cat", "coffee": "espresso", "rocket": "rocket",
    "page": "printed page of text", "china": "pagoda", "flower": "daisy",
}


@dataclass
class Drawing:
    """An image and what is true about it (text lines, face/shape boxes, label)."""

    kind: str
    image: Image.Image
    text: list[str] = field(default_factory=list)
    boxes: list[tuple[str, list[int]]] = field(default_factory=list)  # (label, [x0, y0, x1, y1])
    label: str = ""

    def describe(self) -> str:
        """One true sentence about the image (the MM-alignment target)."""
        if self.kind in ("sign", "document"):
            return f"A {self.kind} with the text: " + " / ".join(self.text) + "."
        if self.kind == "faces":
            n = len(self.boxes)
            return f"A drawing of {n} face{'s' if n != 1 else ''}."
        if self.kind == "shapes":
            names = [lab for lab, _ in self.boxes]
            return "Shapes: " + ", ".join(names) + "."
        if self.kind == "digit":
            return f"A handwritten digit {self.label}."
        return f"A photo of a {self.label}."


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def draw_sign(rng: random.Random) -> Drawing:
    words = rng.choice(WORDS)
    bg = rng.choice([(200, 30, 30), (30, 120, 50), (30, 60, 160), (240, 240, 240), (250, 210, 0)])
    fg = (20, 20, 20) if sum(bg) > 500 else (255, 255, 255)
    img = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(120, 200) for _ in range(3)))
    d = ImageDraw.Draw(img)
    x0, y0 = rng.randint(10, 40), rng.randint(50, 80)
    d.rectangle([x0, y0, SIZE - x0, y0 + 80], fill=bg, outline=(0, 0, 0), width=3)
    d.text((x0 + 12, y0 + 22), words, fill=fg, font=_font(30))
    return Drawing("sign", img, text=[words])


def draw_document(rng: random.Random) -> Drawing:
    lines = rng.sample(DOC_LINES, rng.randint(2, 4))
    img = Image.new("RGB", (SIZE, SIZE), (250, 250, 245))
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((14, 20 + 45 * i), line, fill=(10, 10, 10), font=_font(22))
    return Drawing("document", img, text=lines)


def draw_faces(rng: random.Random) -> Drawing:
    n = rng.randint(1, 3)
    img = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(150, 230) for _ in range(3)))
    d = ImageDraw.Draw(img)
    boxes = []
    for i in range(n):
        w = SIZE // n
        cx, cy, r = w * i + w // 2, rng.randint(80, 140), min(w // 2 - 6, 45)
        box = [cx - r, cy - r, cx + r, cy + r]
        d.ellipse(box, fill=(235, 200, 160), outline=(60, 40, 20), width=2)
        for ex in (cx - r // 3, cx + r // 3):
            d.ellipse([ex - 4, cy - r // 4 - 4, ex + 4, cy - r // 4 + 4], fill=(0, 0, 0))
        d.arc([cx - r // 2, cy, cx + r // 2, cy + r // 2], 20, 160, fill=(120, 0, 0), width=3)
        boxes.append(("face", box))
    return Drawing("faces", img, boxes=boxes)


def draw_shapes(rng: random.Random) -> Drawing:
    img = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    d = ImageDraw.Draw(img)
    boxes = []
    for i in range(rng.randint(1, 3)):
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        s = rng.randint(40, 60)
        x, y = 10 + i * 70 + rng.randint(0, 8), rng.randint(20, SIZE - s - 20)
        box = [x, y, x + s, y + s]
        if shape == "circle":
            d.ellipse(box, fill=COLORS[color])
        elif shape == "square":
            d.rectangle(box, fill=COLORS[color])
        else:
            d.polygon([(x + s // 2, y), (x, y + s), (x + s, y + s)], fill=COLORS[color])
        boxes.append((f"{color} {shape}", box))
    return Drawing("shapes", img, boxes=boxes)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def draw_digit(rng: random.Random) -> Drawing:
    images, targets = _digits()
    i = rng.randrange(len(images))
    arr = (255 - images[i] / 16.0 * 255).astype(np.uint8)  # [8, 8], dark ink on white
    img = Image.fromarray(arr, "L").resize((SIZE, SIZE), Image.NEAREST).convert("RGB")
    return Drawing("digit", img, label=str(int(targets[i])))


@lru_cache(maxsize=8)
def _photo(name: str) -> Image.Image:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
    img = Image.fromarray(arr).convert("RGB")
    return img.resize((SIZE, SIZE), Image.BILINEAR)


def draw_photo(rng: random.Random) -> Drawing:
    name = rng.choice(sorted(PHOTOS))
    return Drawing("photo", _photo(name).copy(), label=PHOTOS[name])


DRAWERS = {"sign": draw_sign, "document": draw_document, "faces": draw_faces, "shapes": draw_shapes, "digit": draw_digit, "photo": draw_photo}


def draw(kind: str, rng: random.Random) -> Drawing:
    return DRAWERS[kind](rng)
