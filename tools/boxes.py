"""Boxes: the one box type every detector returns and every editing tool takes."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class Box(BaseModel):
    """An axis-aligned pixel box, (x0, y0) top-left inclusive, (x1, y1) bottom-right exclusive."""

    x0: int = Field(ge=0, description="Left edge in pixels.")
    y0: int = Field(ge=0, description="Top edge in pixels.")
    x1: int = Field(gt=0, description="Right edge in pixels (exclusive).")
    y1: int = Field(gt=0, description="Bottom edge in pixels (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"box must have x1 > x0 and y1 > y0, got ({self.x0}, {self.y0}, {self.x1}, {self.y1})")
        return self

    @classmethod
    def from_xyxy(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
        """Rounds and clips float model coordinates to the image; degenerate boxes get 1 pixel."""
        ix0, iy0 = min(max(int(round(x0)), 0), width - 1), min(max(int(round(y0)), 0), height - 1)
        ix1, iy1 = min(max(int(round(x1)), ix0 + 1), width), min(max(int(round(y1)), iy0 + 1), height)
        return cls(x0=ix0, y0=iy0, x1=ix1, y1=iy1)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1


class LabeledBox(Box):
    """A box with what it holds and how sure the detector is."""

    label: str = Field(default="", description="What is in the box.")
    score: float | None = Field(default=None, ge=0, le=1, description="Detector confidence in [0, 1].")
