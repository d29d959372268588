"""The memory on the embedded models: MiniLM text, the EfficientNet + PP-OCR image bridge."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder():
    from mmagent.memory.embedders import default_embedder

    return default_embedder(ocr=True)


def test_minilm_similarity_is_semantic(embedder):
    v = embedder.embed_texts(["a cat", "a kitten", "the stock market fell"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]


def test_text_and_image_memories_are_found_by_text_and_image(embedder, tmp_path):
    from mmagent.memory.bridge_eval import labeled_images
    from mmagent.memory.store import MemoryStore

    data = {d.name: d for d in labeled_images(["chelsea", "coffee", "rocket", "stop_sign", "street_sign", "page"])}
    store = MemoryStore(tmp_path, embedder)
    ids = {name: store.add_image(d.image, tags=[d.kind]).id for name, d in data.items()}
    note = store.add_text("the dentist appointment is on Tuesday at 3pm", tags=["note"])
    assert "STOP" in store.get(ids["stop_sign"]).text  # OCR text is stored with the image
    assert store.search("when do I see the dentist?", k=1)[0].id == note.id
    for name, query in [("chelsea", "a photo of a cat"), ("coffee", "a cup of coffee"), ("stop_sign", "a stop sign"), ("rocket", "a rocket")]:
        hits = store.search(query, k=3, filters={"modality": "image"})
        assert ids[name] in [h.id for h in hits], (query, [h.text for h in hits])
    assert store.search(data["coffee"].image, k=1)[0].id == ids["coffee"]  # image -> image
    st = store.stats()
    assert st["items"] == 7 and st["space"] == "minilm-l6" and st["dim"] == 384 and st["consistent"]


def test_bridge_beats_random_on_the_labeled_set(embedder):
    from mmagent.memory.bridge_eval import evaluate, labeled_images, random_baseline

    data = labeled_images(["astronaut", "chelsea", "coffee", "rocket", "horse", "moon", "coins", "brick", "flower",
                           "stop_sign", "exit_sign", "sale_banner", "red_circle", "bar_chart"])
    vecs = embedder.embed_images([d.image for d in data]).vectors
    queries = [(q, i, d.kind) for i, d in enumerate(data) for q in d.queries]
    qv = embedder.embed_texts([q for q, _, _ in queries])
    targets, kinds = [t for _, t, _ in queries], [k for _, _, k in queries]
    score = evaluate(vecs, qv, targets, kinds, "bridge")
    base = random_baseline(len(data), targets, kinds)
    assert score.recall_at_5 >= base.recall_at_5 + 0.3, (score, base)
    assert score.by_kind["drawn-text"] == 1.0  # OCR'd signs are found by what they say


def test_audio_goes_in_by_its_transcript_and_silence_is_refused(embedder, tmp_path):
    import wave

    from mmagent.memory.embedders import UnsupportedContentError
    from mmagent.memory.store import MemoryStore

    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000)
    store = MemoryStore(tmp_path / "mem", embedder)
    with pytest.raises(UnsupportedContentError, match="no speech was recognized"):
        store.add_audio(silent)  # pocketsphinx runs for real and hears nothing
    item = store.add_audio(silent, transcript="call the plumber about the leaking tap")
    assert store.search("fix the water leak", k=1)[0].id == item.id and item.modality == "audio"
    assert store.stats()["items"] == 1
