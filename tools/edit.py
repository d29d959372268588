"""Image editing tools: crop, resize, draw boxes. Each returns a new image artifact id, so calls
chain: detect_faces -> crop_image -> classify_image, or detect_objects -> crop_image -> read_text."""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageDraw
from pydantic import BaseModel, Field

from mmagent.tools.base import ImageId, ToolContext, ToolInputError, tool
from mmagent.tools.boxes import Box, LabeledBox

MAX_SIDE = 4096  # resize_image refuses to make images larger than this on either side


class ImageResult(BaseModel):
    """A new image artifact and its size."""

    image: ImageId
    width: int
    height: int


def _store(ctx: ToolContext, im: Image.Image, **meta: object) -> ImageResult:
    art = ctx.artifacts.add_image(im, meta=meta)
    return ImageResult(image=art.id, width=im.width, height=im.height)


@tool
def crop_image(image: ImageId, box: Box, ctx: ToolContext) -> ImageResult:
    """Crops an image to a pixel box and returns the crop as a new image.

    Args:
        image: Id of the image to crop.
        box: Pixel box to keep (as returned by detect_faces, detect_objects or read_text).
    """
    im = ctx.artifacts.load_image(image)
    # A box partly outside is clipped; one wholly outside is a validation error giving the size.
    x0, y0 = min(box.x0, im.width), min(box.y0, im.height)
    x1, y1 = min(box.x1, im.width), min(box.y1, im.height)
    if x1 <= x0 or y1 <= y0:
        raise ToolInputError(f"box {box.as_tuple()} lies outside {image}, which is {im.width}x{im.height} pixels (width x height); "
                             f"pass a box with 0 <= x0 < x1 <= {im.width} and 0 <= y0 < y1 <= {im.height}", field="box")
    return _store(ctx, im.crop((x0, y0, x1, y1)), source=image, op="crop", box=[x0, y0, x1, y1])


@tool
def resize_image(image: ImageId, ctx: ToolContext, width: int | None = Field(None, gt=0, le=MAX_SIDE), height: int | None = Field(None, gt=0, le=MAX_SIDE), keep_aspect: bool = True) -> ImageResult:
    """Resizes an image and returns the result as a new image.

    Args:
        image: Id of the image to resize.
        width: Target width in pixels; leave out to follow height.
        height: Target height in pixels; leave out to follow width.
        keep_aspect: If both sides are given, fit inside them keeping the aspect ratio.
    """
    if width is None and height is None:
        raise ToolInputError("give width, height or both", field="width")
    im = ctx.artifacts.load_image(image)
    w, h = _target_size(im.width, im.height, width, height, keep_aspect)
    return _store(ctx, im.resize((w, h), Image.Resampling.LANCZOS), source=image, op="resize")


def _target_size(w: int, h: int, width: int | None, height: int | None, keep_aspect: bool) -> tuple[int, int]:
    if width and height and not keep_aspect:
        return width, height
    scale = min(s for s in (width and width / w, height and height / h) if s)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if max(tw, th) > MAX_SIDE:
        raise ToolInputError(f"resized image would be {tw}x{th}, over {MAX_SIDE} pixels on a side (the image is {w}x{h})")
    return tw, th


@tool
def draw_boxes(image: ImageId, boxes: list[LabeledBox], ctx: ToolContext, color: Literal["red", "green", "blue", "yellow", "white", "black"] = "red", line_width: int = Field(3, ge=1, le=20)) -> ImageResult:
    """Draws labeled boxes on a copy of an image and returns it as a new image.

    Args:
        image: Id of the image to draw on.
        boxes: Boxes to draw, each with an optional label and score.
        color: Box and label color.
        line_width: Box line width in pixels.
    """
    im = ctx.artifacts.load_image(image).copy()
    draw = ImageDraw.Draw(im)
    for b in boxes:
        draw.rectangle(b.as_tuple(), outline=color, width=line_width)
        text = b.label + (f" {b.score:.2f}" if b.score is not None else "")
        if text.strip():
            draw.text((b.x0 + line_width, max(0, b.y0 - 12)), text, fill=color)
    return _store(ctx, im, source=image, op="draw_boxes", n=len(boxes))


EDIT_TOOLS = [crop_image, resize_image, draw_boxes]
