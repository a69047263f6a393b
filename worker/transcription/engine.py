"""The speech engine: one CTranslate2 Whisper model per process, batched inference -> Transcript.

The batched pipeline cuts the audio at VAD pauses into independent windows of at most 30 s and
decodes them without conditioning on earlier text, so a long recording cannot drift into invented
text the way sequential decoding with default settings can. Measured speed and accuracy, and how
they were measured: docs/benchmarks.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES

from hark import bundled_model
from hark.settings import Settings
from hark.transcript import Segment, Transcript, Word

from .audio import SAMPLE_RATE


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "default":
        return compute_type
    return "float16" if device == "cuda" else "int8"


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.model_dir = Path(settings.model_dir) if settings.model_dir else bundled_model.install(settings.model_name)
        self.device = resolve_device(settings.device)
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        started = time.monotonic()
        self.model = WhisperModel(
            str(self.model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
        self.pipeline = BatchedInferencePipeline(self.model)
        self.load_seconds = time.monotonic() - started
        self.name = settings.model_name

    @property
    def multilingual(self) -> bool:
        return self.model.model.is_multilingual

    def _language(self, language: str | None) -> str | None:
        """None asks the model to detect; unknown codes are detected too rather than failing the job."""
        if not language or language == "auto" or language not in _LANGUAGE_CODES:
            return None
        return language

    def detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        """The language of a whole recording, looked for in its speech only (chunks then agree)."""
        if not self.multilingual:
            return "en", 1.0
        language, probability, _ = self.model.detect_language(samples, vad_filter=True, language_detection_segments=2)
        return language, float(probability)

    def transcribe(self, samples: np.ndarray, language: str | None = "auto") -> Transcript:
        duration = len(samples) / SAMPLE_RATE
        segments, info = self.pipeline.transcribe(
            samples,
            language=self._language(language),
            batch_size=self.settings.batch_size,
            beam_size=self.settings.beam_size,
            word_timestamps=True,
            vad_filter=True,
        )
        out = []
        for s in segments:  # a generator: decoding happens while iterating
            words = [
                Word(start=round(w.start, 3), end=round(w.end, 3), word=w.word, probability=round(w.probability, 4))
                for w in (s.words or [])
            ]
            out.append(Segment(start=round(s.start, 3), end=round(s.end, 3), text=s.text.strip(), words=words))
        return Transcript(
            language=info.language,
            language_probability=round(float(info.language_probability), 4),
            duration=round(duration, 3),
            model=self.name,
            segments=out,
        )
