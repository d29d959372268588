"""The audio decode path (WAV formats, mono mix, resampling to 16 kHz) and the opt-in speak tool."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from mmagent.tools.audio import Speak, read_wav, resample


def make_wav(x: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    """x: [N] float in [-1, 1] -> PCM WAV bytes (copied to every channel)."""
    if width == 1:
        pcm = (x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        pcm = (x * 32767).astype("<i2").tobytes()
    else:  # 24-bit: low 3 bytes of int32, little-endian
        v = (x * 8388607).astype("<i4")
        pcm = np.stack([(v >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    frames = np.frombuffer(pcm, np.uint8).reshape(len(x), width)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels), w.setsampwidth(width), w.setframerate(rate)
        w.writeframes(np.repeat(frames, channels, axis=0).tobytes() if channels > 1 else frames.tobytes())
    return buf.getvalue()


def tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()])


@pytest.mark.parametrize("width", [1, 2, 3])
def test_read_wav_widths_and_stereo(width):
    x = tone(440, 8000)
    y, rate = read_wav(make_wav(x, 8000, width=width, channels=2))
    assert rate == 8000 and y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).max() < (0.02 if width == 1 else 1e-3)


def test_read_wav_errors():
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(b"RIFF....garbage")
    with pytest.raises(ValueError, match="over the limit"):
        read_wav(make_wav(tone(100, 8000, 2.0), 8000), max_seconds=1)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_keeps_pitch_and_length(rate):
    y = resample(tone(440, rate).astype(np.float32), rate, 16000)
    assert abs(len(y) - 8000) <= 1 and abs(dominant_hz(y, 16000) - 440) < 5


def test_resample_suppresses_aliasing():
    # 11 kHz is above the new Nyquist (8 kHz): naive interpolation folds it to 5 kHz.
    x = tone(11000, 44100).astype(np.float32)
    y = resample(x, 44100, 16000)
    naive = np.interp(np.arange(8000) * 44100 / 16000, np.arange(len(x)), x)
    assert np.sqrt(np.mean(y**2)) < 0.1 * np.sqrt(np.mean(naive**2))


def test_speak_is_opt_in():
    from mmagent.tools.builtins import builtin_tools

    from mmagent.config import Settings

    assert "speak" not in [t.name for t in builtin_tools(Settings())]
    assert "speak" in [t.name for t in builtin_tools(Settings(speak=True))]


def test_speak_missing_voice_says_what_to_do(tmp_path):
    from mmagent.tools.base import ToolContext
    from mmagent.tools.registry import ToolRegistry

    from mmagent.media.artifacts import ArtifactStore

    r = ToolRegistry([Speak(voice=tmp_path / "none.onnx")]).call("speak", {"text": "hi"}, ToolContext(ArtifactStore(tmp_path, "s")))
    assert not r.ok and r.error_kind == "exception"
    assert ("piper" in r.error and "pip install" in r.error) or "none.onnx" in r.error
