"""detect_faces: OpenCV's Viola-Jones Haar cascade (Viola & Jones, CVPR 2001), embedded in opencv.

The frontal-face cascade ships inside opencv-python-headless (`cv2.data.haarcascades`); opencv 5
drops both the classifier and its XML files, hence the `<5` pin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from mmagent.tools.base import ImageId, StrictInput, Tool, ToolContext
from mmagent.tools.boxes import Box

CASCADE = "haarcascade_frontalface_default.xml"


class DetectFacesInput(StrictInput):
    image: ImageId = Field(description="Id of the image to search for faces.")
    min_size: int = Field(24, ge=8, le=4096, description="Smallest face side in pixels to report.")
    min_neighbors: int = Field(5, ge=1, le=50, description="Higher means fewer, surer detections.")


class DetectFacesOutput(BaseModel):
    faces: list[Box] = Field(description="One box per face, largest first.")
    count: int


class DetectFaces(Tool):
    name = "detect_faces"
    description = "Finds frontal human faces in an image and returns one pixel box per face."
    input_model = DetectFacesInput
    output_model = DetectFacesOutput

    def __init__(self, scale_factor: float = 1.1) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self._cascade = None

    def load(self) -> None:
        import cv2

        from mmagent.config import get_settings

        # OpenCV's own thread pool, like torch's, oversubscribes a small shared CPU (settings.threads).
        if get_settings().threads > 0:
            cv2.setNumThreads(get_settings().threads)
        path = Path(cv2.data.haarcascades) / CASCADE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load {path}; reinstall opencv-python-headless<5 (opencv 5 has no Haar cascades)")
        self._cascade = cascade

    def run(self, args: DetectFacesInput, ctx: ToolContext) -> DetectFacesOutput:
        import cv2

        rgb = np.asarray(ctx.artifacts.load_image(args.image))  # [H, W, 3] uint8
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=args.min_neighbors, minSize=(args.min_size, args.min_size))
        boxes = [Box(x0=int(x), y0=int(y), x1=int(x + w), y1=int(y + h)) for x, y, w, h in found]
        boxes.sort(key=lambda b: (b.x1 - b.x0) * (b.y1 - b.y0), reverse=True)
        return DetectFacesOutput(faces=boxes, count=len(boxes))
