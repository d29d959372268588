"""classify_image: EfficientNet-Lite0 (Tan & Le, arXiv 1905.11946) ImageNet-1k top-k, embedded.

The network and its weights loader are `mmagent.model.encoders.efficientnet` (the same encoder the
MM-LLM uses for visual tokens); this tool only asks its ImageNet head for the top-k classes.
"""

from __future__ import annotations

from typing import Any

from mmagent.tools.base import ImageId, StrictInput, Tool, ToolContext
from pydantic import BaseModel, Field


class ClassifyImageInput(StrictInput):
    image: ImageId = Field(description="Id of the image to classify.")
    top_k: int = Field(5, ge=1, le=20, description="How many labels to return, most likely first.")


class Label(BaseModel):
    label: str = Field(description="ImageNet class name.")
    index: int = Field(description="ImageNet class index 0-999.")
    probability: float


class ClassifyImageOutput(BaseModel):
    labels: list[Label]


class ClassifyImage(Tool):
    name = "classify_image"
    description = "Says what an image shows: the top ImageNet-1k labels (1000 everyday objects and animals) with probabilities."
    input_model = ClassifyImageInput
    output_model = ClassifyImageOutput

    def __init__(self, model: str = "efficientnet-lite0", encoder: Any = None) -> None:
        """`encoder`: an already built `EfficientNetEncoder` (tests pass a random one); else `model` is loaded."""
        super().__init__()
        self.model, self.encoder = model, encoder

    def load(self) -> None:
        from mmagent.config import apply_thread_policy

        apply_thread_policy()
        if self.encoder is None:
            from mmagent.model.encoders.efficientnet import load_efficientnet_lite0

            self.encoder = load_efficientnet_lite0(self.model)
        self.encoder.eval()

    def run(self, args: ClassifyImageInput, ctx: ToolContext) -> ClassifyImageOutput:
        im = ctx.artifacts.load_image(args.image)
        preds = self.encoder.classify([im], k=args.top_k)[0]
        return ClassifyImageOutput(labels=[Label(label=p.label, index=p.index, probability=round(p.score, 5)) for p in preds])
