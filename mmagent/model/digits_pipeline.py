"""The embedded class-conditional digits generator: a diffusers pipeline trained in this repo.

What ships
    Folder  `mmagent/weights/digits-diffusion/` (`DEFAULT_WEIGHTS` below), written by
            `DigitsPipeline.save_pretrained`: `model_index.json`, `unet/` (a diffusers
            `UNet2DModel`, safetensors), `scheduler/` (`DDIMScheduler`), plus the recipe's
            `train_config.yaml`, `eval.json` (classifier check, per class), `samples.png`, `loss.png`.
    Class   `mmagent.model.digits_pipeline.DigitsPipeline` (a `diffusers.DiffusionPipeline` subclass).
    Trained by `recipes/digits_diffusion.py` on sklearn's `load_digits()` (8x8 handwritten digits).

How to call it
    >>> from mmagent.model.digits_pipeline import load_default_pipeline, digits_from_prompt
    >>> pipe = load_default_pipeline()                      # or DigitsPipeline.from_pretrained(folder)
    >>> labels = digits_from_prompt("a handwritten 7")      # -> [7]
    >>> out = pipe(labels, num_inference_steps=25, generator=torch.Generator().manual_seed(0))
    >>> out.images[0]                                       # PIL RGB, 64x64, black ink on white

    `class_labels` is an int or a list of ints in 0..9 (one image per label); `guidance_scale`
    sets classifier-free guidance; `output_type="np"` returns ink intensity in [0, 1] at the
    native 8x8 (`[B, H, W]`, the `load_digits()/16` convention) instead of display images.

Loading
    `DigitsPipeline.from_pretrained(folder)` works as for any diffusers pipeline (safetensors).
    `DiffusionPipeline.from_pretrained(folder)` cannot resolve the class by itself because
    `model_index.json` names `DigitsPipeline`, which is not in diffusers; call it on this class,
    or pass `custom_pipeline=mmagent.model.digits_pipeline.__file__`.

Conditioning: the UNet's class embedding has 11 rows: ids 0-9 are the digits and id 10 is the
"null" class the recipe trains with label dropout, so sampling can use classifier-free guidance
(Ho & Salimans 2022, arXiv 2207.12598): eps = eps_null + w * (eps_digit - eps_null).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "digits-diffusion"
NUM_DIGITS = 10
NULL_CLASS = NUM_DIGITS  # the unconditional class id used for classifier-free guidance

_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_DIGIT_TOKEN = re.compile(r"(?<![\w.])(\d|" + "|".join(_WORDS) + r")(?![\w.])", re.IGNORECASE)


class DigitsPipeline(DiffusionPipeline):
    """Class-conditional DDIM sampling of 8x8 handwritten digits (see the module docstring)."""

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.set_progress_bar_config(disable=True)  # a tool call, not a console: opt in with enable

    @property
    def has_null_class(self) -> bool:
        return (self.unet.config.num_class_embeds or 0) > NULL_CLASS

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | list[int] | torch.Tensor,
        num_inference_steps: int = 25,
        guidance_scale: float = 2.0,
        generator: torch.Generator | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        display_size: int = 64,
    ) -> ImagePipelineOutput:
        """Draws one digit per label; returns `ImagePipelineOutput(images=...)`.

        `output_type`: "pil" (RGB, `display_size` square, NEAREST upscaling keeps the pixels
        honest), "np" ([B, H, W] float in [0, 1], ink = 1) or "pt" (the same as a tensor).
        """
        labels = self._check_labels(class_labels)
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        x = self._sample(labels, num_inference_steps, guidance_scale, generator, eta)  # [B, 1, H, W] in [-1, 1]
        ink = ((x[:, 0].float() + 1) / 2).clamp(0, 1).cpu()  # [B, H, W]
        if output_type == "pt":
            return ImagePipelineOutput(images=ink)
        if output_type == "np":
            return ImagePipelineOutput(images=ink.numpy())
        return ImagePipelineOutput(images=[to_display(a, display_size) for a in ink.numpy()])

    def _check_labels(self, class_labels: int | list[int] | torch.Tensor) -> torch.Tensor:
        labels = torch.as_tensor([class_labels] if isinstance(class_labels, int) else class_labels, dtype=torch.long)
        if labels.ndim != 1 or labels.numel() == 0:
            raise ValueError("class_labels must be a digit 0-9 or a non-empty list of them")
        bad = [int(v) for v in labels if not 0 <= int(v) < NUM_DIGITS]
        if bad:
            raise ValueError(f"class_labels must be digits 0-9; got {bad}")
        return labels.to(self.unet.device)

    def _sample(
        self, labels: torch.Tensor, steps: int, guidance: float, generator: torch.Generator | None, eta: float
    ) -> torch.Tensor:
        size = self.unet.config.sample_size
        shape = (labels.shape[0], self.unet.config.in_channels, size, size)
        x = randn_tensor(shape, generator=generator, device=self.unet.device, dtype=self.unet.dtype)  # [B, 1, H, W]
        guided = self.has_null_class and guidance != 1.0
        # One batched UNet call per step: [digits; null] -> split -> CFG combination.
        cond = torch.cat([labels, torch.full_like(labels, NULL_CLASS)]) if guided else labels
        self.scheduler.set_timesteps(steps, device=self.unet.device)
        for t in self.progress_bar(self.scheduler.timesteps):
            inp = torch.cat([x, x]) if guided else x
            eps = self.unet(inp, t, class_labels=cond).sample
            if guided:
                eps_digit, eps_null = eps.chunk(2)
                eps = eps_null + guidance * (eps_digit - eps_null)
            x = self.scheduler.step(eps, t, x, **self._step_kwargs(eta, generator)).prev_sample
        return x

    def _step_kwargs(self, eta: float, generator: torch.Generator | None) -> dict:
        # DDIM takes eta (0 = deterministic); other schedulers may take neither.
        params = inspect.signature(self.scheduler.step).parameters
        kwargs = {"generator": generator} if "generator" in params else {}
        if "eta" in params:
            kwargs["eta"] = eta
        return kwargs


def to_display(ink: np.ndarray, size: int = 64) -> Image.Image:
    """[H, W] ink in [0, 1] -> RGB PIL image, black ink on white paper, NEAREST-upscaled."""
    gray = (255 * (1 - ink)).round().astype(np.uint8)
    return Image.fromarray(gray, mode="L").resize((size, size), Image.NEAREST).convert("RGB")


def digits_from_prompt(prompt: str) -> list[int]:
    """The digits a prompt asks for, in order: "a handwritten 7" -> [7], "three and 5" -> [3, 5]."""
    found = [int(m) if m.isdigit() else _WORDS[m.lower()] for m in _DIGIT_TOKEN.findall(prompt)]
    if not found:
        raise ValueError(
            f"the digits generator draws handwritten digits 0-9, and no digit was found in {prompt!r}; "
            "name one, e.g. 'a handwritten 7' or 'the digit seven'"
        )
    return found


def load_default_pipeline(device: str | torch.device = "cpu") -> DigitsPipeline:
    """The shipped generator from `DEFAULT_WEIGHTS`, with a clear error if it is missing."""
    if not (DEFAULT_WEIGHTS / "model_index.json").is_file():
        raise FileNotFoundError(
            f"the embedded digits generator is missing at {DEFAULT_WEIGHTS}; retrain it with "
            "`python -m mmagent.recipes.digits_diffusion train recipes/configs/digits-default.yaml`"
        )
    return DigitsPipeline.from_pretrained(DEFAULT_WEIGHTS).to(device)
