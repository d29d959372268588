"""Draws examples/sign.png, the image the README's main command asks about (run once; committed)."""

from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont

font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"), 44)
img = Image.new("RGB", (480, 240), (40, 110, 60))
draw = ImageDraw.Draw(img)
draw.rounded_rectangle((12, 12, 468, 228), radius=18, outline=(255, 255, 255), width=6)
draw.text((240, 85), "MAIN STREET", font=font, fill="white", anchor="mm")
draw.text((240, 160), "NO PARKING", font=font, fill="white", anchor="mm")
img.save(Path(__file__).with_name("sign.png"))
