"""detect_objects: transformers object detectors (DETR, YOLOS, OWL-ViT/OWLv2, ...) from a local
`save_pretrained` folder or a hub id.

No general detector's weights ship in a PyPI wheel (searched), so nothing is embedded: the
model comes from the constructor, else `settings.detector` (`MMAGENT_DETECTOR`). Without one the
tool answers with an error saying how to configure it. Closed-set detectors (DETR: Carion et al.
2020, arXiv 2005.12872; YOLOS) report their own label set, optionally filtered by `labels`;
open-vocabulary ones (OWL-ViT: Minderer et al. 2022, arXiv 2205.06230) need `labels` as queries.
Which kind a checkpoint is comes from its config class and transformers' own auto mappings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mmagent.tools.base import ImageId, StrictInput, Tool, ToolContext
from mmagent.tools.boxes import Box, LabeledBox

NOT_CONFIGURED = (
    "no object detector is configured (no general detector's weights ship on PyPI, so none is embedded). "
    "Point detect_objects at a transformers object-detection model: set MMAGENT_DETECTOR to a local "
    "save_pretrained folder or a hub id (e.g. facebook/detr-resnet-50, hustvl/yolos-tiny, google/owlvit-base-patch32), "
    "or `detector = \"...\"` in ~/.config/mmagent/config.toml, or DetectObjects(model=...) in Python. "
    "Until then use detect_faces for faces or read_text for text."
)


class DetectorNotConfigured(RuntimeError):
    """Raised on call (never at registration) when no detector model is configured."""


class DetectObjectsInput(StrictInput):
    image: ImageId = Field(description="Id of the image to search.")
    labels: list[str] | None = Field(None, description="Object names to look for; required by open-vocabulary detectors, a filter for others.")
    threshold: float = Field(0.5, ge=0, le=1, description="Minimum detection score.")
    max_objects: int = Field(20, ge=1, le=100, description="Return at most this many, best first.")


class DetectObjectsOutput(BaseModel):
    objects: list[LabeledBox] = Field(description="Boxes with labels and scores, best first.")
    count: int
    model: str


class DetectObjects(Tool):
    name = "detect_objects"
    description = "Finds objects in an image and returns labeled pixel boxes with scores."
    input_model = DetectObjectsInput
    output_model = DetectObjectsOutput

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self._net: Any = None
        self._processor: Any = None
        self.open_vocabulary = False

    def load(self) -> None:
        from mmagent.config import apply_thread_policy, get_settings

        spec = self.model or get_settings().detector
        if not spec:
            raise DetectorNotConfigured(NOT_CONFIGURED)
        apply_thread_policy()
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForObjectDetection, AutoModelForZeroShotObjectDetection, AutoProcessor
        from transformers.models.auto.modeling_auto import MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING

        from mmagent.hub.loading import hf_loading

        config = AutoConfig.from_pretrained(spec)
        self.open_vocabulary = type(config) in MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING
        with hf_loading():
            if self.open_vocabulary:  # text queries: the processor holds a tokenizer too
                self._net = AutoModelForZeroShotObjectDetection.from_pretrained(spec)
                self._processor = AutoProcessor.from_pretrained(spec, backend="pil")
            else:
                self._net = AutoModelForObjectDetection.from_pretrained(spec)
                # The PIL backend: transformers' default one needs torchvision, which we never import.
                self._processor = AutoImageProcessor.from_pretrained(spec, backend="pil")
        self._net.eval()
        self.model = spec

    def run(self, args: DetectObjectsInput, ctx: ToolContext) -> DetectObjectsOutput:
        im = ctx.artifacts.load_image(args.image)
        if self.open_vocabulary:
            if not args.labels:
                raise ValueError(f"{self.model} is an open-vocabulary detector: pass `labels`, the object names to look for")
            found = self._detect_open(im, args.labels, args.threshold)
        else:
            found = self._detect_closed(im, args.threshold)
            if args.labels:
                wanted = {s.lower() for s in args.labels}
                found = [b for b in found if b.label.lower() in wanted]
        found.sort(key=lambda b: b.score or 0.0, reverse=True)
        found = found[: args.max_objects]
        return DetectObjectsOutput(objects=found, count=len(found), model=str(self.model))

    def _detect_closed(self, im, threshold: float) -> list[LabeledBox]:
        import torch

        inputs = self._processor(images=[im], return_tensors="pt")
        with torch.inference_mode():
            out = self._net(**inputs)
        res = self._processor.post_process_object_detection(out, threshold=threshold, target_sizes=[(im.height, im.width)])[0]
        names = self._net.config.id2label
        return [_box(b, names.get(int(i), str(int(i))), s, im) for b, i, s in zip(res["boxes"], res["labels"], res["scores"])]

    def _detect_open(self, im, labels: list[str], threshold: float) -> list[LabeledBox]:
        import torch

        inputs = self._processor(text=[labels], images=[im], return_tensors="pt")
        with torch.inference_mode():
            out = self._net(**inputs)
        res = self._processor.post_process_grounded_object_detection(
            out, threshold=threshold, target_sizes=[(im.height, im.width)], text_labels=[labels]
        )[0]
        return [_box(b, labels[int(i)], s, im) for b, i, s in zip(res["boxes"], res["labels"], res["scores"])]


def _box(xyxy, label: str, score, im) -> LabeledBox:
    b = Box.from_xyxy(*(float(v) for v in xyxy), im.width, im.height)
    return LabeledBox(**b.model_dump(), label=label, score=round(min(max(float(score), 0.0), 1.0), 4))
