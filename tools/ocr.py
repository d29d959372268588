"""read_text: PP-OCRv4 (Du et al., PP-OCR, arXiv 2009.09941) through rapidocr's ONNX pipeline.

The three ONNX models (DB text detector, angle classifier, CRNN/SVTR recognizer) come from the
catalog entry `ppocr-v4` (provisioned, sha256-checked); the pre/post-processing code is the
installed `rapidocr_onnxruntime` package, pointed at those files. onnxruntime gets one intra-op
thread per model by default, as torch does (see the settings' `threads`).
"""

from __future__ import annotations

import threading

import numpy as np
from mmagent.tools.base import ImageId, StrictInput, Tool, ToolContext
from mmagent.tools.boxes import Box
from pydantic import BaseModel, Field

MODEL_FILES = {
    "det_model_path": "ch_PP-OCRv4_det_infer.onnx",
    "rec_model_path": "ch_PP-OCRv4_rec_infer.onnx",
    "cls_model_path": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}


class ReadTextInput(StrictInput):
    image: ImageId = Field(description="Id of the image to read text from.")
    min_confidence: float = Field(0.5, ge=0, le=1, description="Drop lines recognised with lower confidence.")


class TextLine(BaseModel):
    text: str
    confidence: float = Field(description="Lowest recognition confidence among the line's pieces.")
    box: Box = Field(description="Axis-aligned box around the line.")


class ReadTextOutput(BaseModel):
    lines: list[TextLine] = Field(description="Lines top to bottom, left to right.")
    text: str = Field(description="All lines joined by newlines.")


class ReadText(Tool):
    name = "read_text"
    description = "Reads printed text in an image (OCR): returns each line with its box and confidence."
    input_model = ReadTextInput
    output_model = ReadTextOutput
    warm_for = frozenset({"image"})  # a turn with an image often asks what it says

    def __init__(self, model: str = "ppocr-v4", threads: int | None = None, max_side: int | None = None) -> None:
        """`max_side`: None keeps rapidocr's detector sizing (the *shorter* side scaled to 736 px, up
        or down: best recall on small text, slow on small images); an int only *shrinks* images whose
        longer side exceeds it (3-30x faster on small images, may miss tiny text; see bench/tools.py)."""
        super().__init__()
        self.model, self.threads, self.max_side = model, threads, max_side
        self._engine = None
        self._lock = threading.Lock()  # rapidocr stores per-call thresholds on the engine

    def load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        from mmagent.config import get_settings
        from mmagent.hub.provision import ensure

        folder = ensure(self.model)
        threads = self.threads if self.threads is not None else get_settings().threads
        paths = {k: str(folder / v) for k, v in MODEL_FILES.items()}
        # -1 is onnxruntime's "choose for me"; 0 in our settings means the same.
        sizing = {"det_limit_type": "max", "det_limit_side_len": self.max_side} if self.max_side else {}
        self._engine = RapidOCR(intra_op_num_threads=threads or -1, inter_op_num_threads=1, **paths, **sizing)

    def run(self, args: ReadTextInput, ctx: ToolContext) -> ReadTextOutput:
        im = ctx.artifacts.load_image(args.image)
        bgr = np.ascontiguousarray(np.asarray(im)[:, :, ::-1])  # rapidocr takes arrays as OpenCV BGR
        with self._lock:
            result, _ = self._engine(bgr, text_score=args.min_confidence)
        pieces = [_piece(poly, text, score, im.width, im.height) for poly, text, score in result or []]
        lines = [merge_row(row) for row in group_rows(pieces)]
        return ReadTextOutput(lines=lines, text="\n".join(line.text for line in lines))


def _piece(poly: list, text: str, score: float, width: int, height: int) -> TextLine:
    pts = np.asarray(poly, dtype=np.float32)  # [4, 2] corner points of a (possibly rotated) quad
    box = Box.from_xyxy(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max(), width, height)
    return TextLine(text=text, confidence=round(float(score), 4), box=box)


def group_rows(pieces: list[TextLine]) -> list[list[TextLine]]:
    """The detector finds text *regions*; a wide gap splits one line in two. Regions whose vertical
    centre falls inside the current row's span join it; rows go top to bottom, pieces left to right."""
    rows: list[list[TextLine]] = []
    for p in sorted(pieces, key=lambda p: (p.box.y0 + p.box.y1) / 2):
        centre = (p.box.y0 + p.box.y1) / 2
        if rows and min(q.box.y0 for q in rows[-1]) <= centre <= max(q.box.y1 for q in rows[-1]):
            rows[-1].append(p)
        else:
            rows.append([p])
    return [sorted(r, key=lambda p: p.box.x0) for r in rows]


def merge_row(row: list[TextLine]) -> TextLine:
    box = Box(x0=min(p.box.x0 for p in row), y0=min(p.box.y0 for p in row), x1=max(p.box.x1 for p in row), y1=max(p.box.y1 for p in row))
    return TextLine(text=" ".join(p.text for p in row), confidence=min(p.confidence for p in row), box=box)
