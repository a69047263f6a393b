"""The transcript model and its renderers: txt, json, srt and vtt all come from one Transcript."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float


class Segment(BaseModel):
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    language: str | None  # None when no speech was detected: no language is claimed
    language_probability: float | None = None
    duration: float
    model: str
    segments: list[Segment]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def shifted(self, offset: float) -> Transcript:
        """The same transcript with every timestamp moved by `offset` seconds (chunk assembly)."""
        return self.model_copy(
            update={
                "segments": [
                    Segment(
                        start=s.start + offset,
                        end=s.end + offset,
                        text=s.text,
                        words=[
                            Word(start=w.start + offset, end=w.end + offset, word=w.word, probability=w.probability)
                            for w in s.words
                        ],
                    )
                    for s in self.segments
                ]
            }
        )

    @classmethod
    def joined(cls, parts: list[tuple[float, Transcript]], duration: float, model: str) -> Transcript:
        """One transcript from (offset, chunk transcript) pairs, timestamps made continuous."""
        parts = sorted(parts, key=lambda p: p[0])
        segments = [seg for offset, t in parts for seg in t.shifted(offset).segments]
        # The language spoken longest wins; chunks detect it independently. Chunks where nothing was
        # said claim none, and with no speech anywhere there is no language (None).
        by_language: dict[str, float] = {}
        for _, t in parts:
            if t.language and t.text:
                by_language[t.language] = by_language.get(t.language, 0.0) + t.duration
        language = max(by_language, key=lambda code: by_language[code]) if by_language else None
        return cls(language=language, duration=duration, model=model, segments=segments)


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def render_txt(t: Transcript) -> str:
    return "\n".join(s.text.strip() for s in t.segments if s.text.strip()) + "\n"


def render_json(t: Transcript) -> str:
    return t.model_dump_json(indent=2)


def render_srt(t: Transcript) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate((s for s in t.segments if s.text.strip()), start=1)
    ]
    return "\n".join(blocks)


def render_vtt(t: Transcript) -> str:
    blocks = [
        f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in t.segments if s.text.strip()
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


RENDERERS = {"txt": render_txt, "json": render_json, "srt": render_srt, "vtt": render_vtt}
CONTENT_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
