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

    def __init__(self, scale_factor: float = 1.1, max_side: int | None = 1024) -> None:
        """`max_side`: larger images are shrunk (area filter) before the cascade scans them and the
        boxes scaled back. The scan cost grows with pixels while phone photos hold faces far above
        the 24 px minimum; a face that would shrink below `min_size` is missed. None: full size."""
        super().__init__()
        self.scale_factor, self.max_side = scale_factor, max_side
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
        h, w = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.max_side / max(h, w)) if self.max_side else 1.0
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=args.min_neighbors, minSize=(args.min_size, args.min_size))
        boxes = [Box.from_xyxy(x / scale, y / scale, (x + bw) / scale, (y + bh) / scale, w, h) for x, y, bw, bh in found]
        boxes.sort(key=lambda b: (b.x1 - b.x0) * (b.y1 - b.y0), reverse=True)
        return DetectFacesOutput(faces=boxes, count=len(boxes))
