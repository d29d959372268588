"""generate_image: diffusers pipelines behind one tool.

Which pipeline: `GenerateImage(pipeline=...)`, else `settings.generator` (`MMAGENT_GENERATOR`), else
the embedded class-conditional digits generator (`mmagent.model.digits_pipeline`, trained in this repo).
A pipeline is a diffusers folder (`model_index.json`) or a hub id. What a pipeline can do is read
from its `__call__` signature, not its name:

    takes `prompt`        text-to-image (Stable Diffusion family): prompt, steps, guidance, size
    takes `class_labels`  class-conditional (DDPM/DDIM over a class-embedding UNet2DModel, DiT):
                          `class_label`, else class ids named in the prompt ("a 7", "three and five")

Pipelines whose `model_index.json` names a class diffusers does not know are resolved through
`CUSTOM_PIPELINES` (class name -> import path), the way diffusers itself resolves `_class_name`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import threading
from pathlib import Path
from typing import Any

from mmagent.tools.base import ImageId, StrictInput, Tool, ToolContext
from PIL import Image
from pydantic import BaseModel, Field

CUSTOM_PIPELINES = {"DigitsPipeline": "mmagent.model.digits_pipeline:DigitsPipeline"}
_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_NUMBER = re.compile(r"(?<![\w.])(\d+|" + "|".join(_NUMBER_WORDS) + r")(?![\w.])", re.IGNORECASE)


class GenerateImageInput(StrictInput):
    prompt: str = Field(min_length=1, max_length=1000, description="What to draw.")
    class_label: int | None = Field(None, ge=0, description="Class id for class-conditional generators (else taken from the prompt).")
    seed: int = Field(0, ge=0, description="Random seed; the same seed, steps and prompt give the same image.")
    steps: int = Field(25, ge=1, le=200, description="Denoising steps: more is slower and usually cleaner.")
    guidance_scale: float | None = Field(None, ge=0, le=30, description="Classifier-free guidance strength (pipeline default if omitted).")
    width: int | None = Field(None, ge=64, le=2048, multiple_of=8, description="Width in pixels (text-to-image only).")
    height: int | None = Field(None, ge=64, le=2048, multiple_of=8, description="Height in pixels (text-to-image only).")


class GenerateImageOutput(BaseModel):
    image: ImageId
    width: int
    height: int
    seed: int
    steps: int
    class_labels: list[int] | None = None
    model: str


class GenerateImage(Tool):
    name = "generate_image"
    description = "Generates a new image from a text prompt (or a class id) with a diffusion model; returns an image id."
    input_model = GenerateImageInput
    output_model = GenerateImageOutput

    def __init__(self, pipeline: str | Path | None = None, pipe: Any = None, device: str | None = None) -> None:
        """`pipeline`: a folder or hub id; `pipe`: an already built diffusers pipeline (wins)."""
        super().__init__()
        self.pipeline, self.pipe, self.device = pipeline, pipe, device
        self.model_name = str(pipeline) if pipeline else ""
        self._lock = threading.Lock()  # a pipeline's scheduler holds per-call state: one call at a time

    def load(self) -> None:
        from mmagent.config import apply_thread_policy, get_settings

        apply_thread_policy()
        settings = get_settings()
        if self.pipe is None:
            spec = self.pipeline or settings.generator
            from mmagent.hub.loading import hf_loading

            with hf_loading():  # diffusers loads its parts with transformers' loaders
                self.pipe = load_pipeline(spec) if spec else load_default()
            self.model_name = str(spec) if spec else "digits-diffusion (embedded)"
        self.model_name = self.model_name or type(self.pipe).__name__
        self.pipe.to(self.device or settings.device)
        self.pipe.set_progress_bar_config(disable=True)

    def run(self, args: GenerateImageInput, ctx: ToolContext) -> GenerateImageOutput:
        import torch

        params = inspect.signature(self.pipe.__call__).parameters
        gen = torch.Generator(device="cpu").manual_seed(args.seed)
        kwargs: dict[str, Any] = {"num_inference_steps": args.steps, "generator": gen}
        if args.guidance_scale is not None and "guidance_scale" in params:
            kwargs["guidance_scale"] = args.guidance_scale
        labels = None
        if "prompt" in params:
            kwargs["prompt"] = args.prompt
            kwargs.update({k: v for k, v in (("width", args.width), ("height", args.height)) if v is not None})
        elif "class_labels" in params:
            labels = [args.class_label] if args.class_label is not None else class_ids_from_prompt(args.prompt, self.pipe)
            kwargs["class_labels"] = labels
        else:
            raise TypeError(f"{self.model_name}: the pipeline takes neither `prompt` nor `class_labels`; it cannot be driven by this tool")
        with self._lock:
            images = self.pipe(**kwargs).images
        im = images[0] if len(images) == 1 else hstack(images)
        art = ctx.artifacts.add_image(im, meta={"op": "generate", "model": self.model_name, "prompt": args.prompt, "seed": args.seed, "steps": args.steps})
        return GenerateImageOutput(image=art.id, width=im.width, height=im.height, seed=args.seed, steps=args.steps, class_labels=labels, model=self.model_name)


def load_default():
    """The embedded digits generator; if it is not there, say how to get it or choose another."""
    from mmagent.model.digits_pipeline import load_default_pipeline

    try:
        return load_default_pipeline()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; or set MMAGENT_GENERATOR to a diffusers pipeline folder or hub id") from err


def load_pipeline(spec: str | Path):
    """A diffusers pipeline from a folder (custom classes via CUSTOM_PIPELINES) or a hub id."""
    from diffusers import DiffusionPipeline

    folder = Path(spec).expanduser()
    index = folder / "model_index.json"
    looks_like_path = isinstance(spec, Path) or str(spec).startswith((".", "/", "~")) or folder.exists()
    if looks_like_path and not folder.is_dir():
        raise FileNotFoundError(f"no diffusers pipeline folder at {folder}; check MMAGENT_GENERATOR / the `pipeline` argument")
    if looks_like_path and not index.is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers pipeline folder (no model_index.json); save one with pipe.save_pretrained(folder)")
    if index.is_file():
        class_name = json.loads(index.read_text()).get("_class_name", "")
        if class_name in CUSTOM_PIPELINES:
            module, _, attr = CUSTOM_PIPELINES[class_name].partition(":")
            return getattr(importlib.import_module(module), attr).from_pretrained(folder)
        return DiffusionPipeline.from_pretrained(folder)
    if "/" in str(spec):
        return DiffusionPipeline.from_pretrained(str(spec))  # a hub id: needs a network or the HF cache
    raise FileNotFoundError(f"generator {spec!r} is neither a pipeline folder nor a hub id (org/name)")


def class_ids_from_prompt(prompt: str, pipe: Any) -> list[int]:
    """Class ids named in a prompt: the pipeline's label names (DiT's `labels`) or numbers."""
    names: dict[str, int] = getattr(pipe, "labels", None) or {}
    low = prompt.lower()
    found = [i for name, i in names.items() if re.search(rf"\b{re.escape(name.lower())}\b", low)]
    if not found:
        found = [int(m) if m.isdigit() else _NUMBER_WORDS[m.lower()] for m in _NUMBER.findall(prompt)]
    if not found:
        raise ValueError(f"no class found in {prompt!r}: this generator is class-conditional; name a class (e.g. 'a 7') or pass class_label")
    return found


def hstack(images: list[Image.Image]) -> Image.Image:
    """Side by side, left to right (one image per requested class)."""
    out = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out
