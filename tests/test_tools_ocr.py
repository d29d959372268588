"""read_text's line assembly (no model): detector regions on one row become one line."""

from __future__ import annotations

from mmagent.tools.boxes import Box
from mmagent.tools.ocr import TextLine, group_rows, merge_row


def piece(text: str, x0: int, y0: int, x1: int, y1: int, conf: float = 0.9) -> TextLine:
    return TextLine(text=text, confidence=conf, box=Box(x0=x0, y0=y0, x1=x1, y1=y1))


def test_regions_on_one_row_merge_left_to_right_and_rows_go_down():
    pieces = [piece("World", 130, 22, 230, 58, 0.8), piece("OPEN", 20, 90, 120, 125), piece("Hello", 20, 20, 117, 57)]
    lines = [merge_row(r) for r in group_rows(pieces)]
    assert [line.text for line in lines] == ["Hello World", "OPEN"]
    assert lines[0].box == Box(x0=20, y0=20, x1=230, y1=58) and lines[0].confidence == 0.8


def test_empty():
    assert group_rows([]) == []
