"""The streaming policy: live audio in, partial and final text out, decoded by the shared engine.

A stream holds a buffer of the audio whose text is not final yet. Each step decodes the whole buffer with
the engine (its pieces share the model's batches with every other stream and job) and then:

- **endpoint**: Silero VAD (faster-whisper's) finds the speech in the buffer; speech followed by at least
  ENDPOINT_SILENCE_MS of silence is over, so its words become one `Final` and the buffer drops its audio.
- **LocalAgreement-2** (Macháček et al. 2023, whisper_streaming): while someone talks on without a pause,
  the words two consecutive decodings agree on (the longest common prefix) are stable; once the buffer
  outgrows AGREE_AFTER_SECONDS, the agreed words become a `Final` and the buffer is cut after them, all
  but CONTEXT_SECONDS of audio that leads into the next words (their own words are not decoded again).
- **settled**: a word that ended SETTLED_SECONDS before the buffer's end is final even where the decodings
  still differ, so no final lags its end by more than that and a step (agreement alone once left a stretch
  of read speech waiting 10 s), and the buffer stays well inside Whisper's 30-second window.
- **partial**: the rest of the latest decoding, sent whenever its text changes (it may still change).

The buffer is decoded without the earlier finals as a prompt (whisper_streaming prompts with them): the
engine batches only jobs whose prompts have the same token count, and a growing per-stream prompt would
keep streams out of each other's batches. Only the client's own `prompt` is passed, the same every step.
With no language given, the first final's language is kept for the rest of the stream.

Not thread-safe beyond this: `feed` may be called from any thread while one `step` runs; steps run one at
a time (the WebSocket endpoint's decode loop). Lag and accuracy are measured by bench/live.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import takewhile

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from hark.domain.transcript import Transcript, Word
from worker.transcription.audio import SAMPLE_RATE
from worker.transcription.engine import DecodeOptions

# A pause this long ends an utterance: what it said becomes final.
ENDPOINT_SILENCE_MS = 500
# The VAD's padding around speech (faster-whisper's default is 400 ms; less keeps finals prompt).
SPEECH_PAD_MS = 200
ENDPOINT_VAD = VadOptions(min_silence_duration_ms=ENDPOINT_SILENCE_MS, speech_pad_ms=SPEECH_PAD_MS)
# A short utterance waits for the next one to be final with it (Whisper mishears a lone word), unless the
# pause after it is long: someone said "yes" and waits.
MIN_FINAL_SECONDS = 2.0
LONG_PAUSE_SECONDS = 1.5
# Talk without a pause: once the buffer is this long, the words two decodings agree on become final.
AGREE_AFTER_SECONDS = 3.0
# A word that ended this long before the buffer's end becomes final even if the decodings still differ on it
# (Whisper heard this much after it): a final is never later than this plus one step behind its end.
SETTLED_SECONDS = 2.5
# A buffer without speech is dropped but for its end (speech may be starting there).
KEEP_SILENCE_SECONDS = 0.5
# Cut mid-speech (agreed or settled words), the buffer keeps this much audio before the cut: Whisper hears the
# words that lead into the next ones; their own words, final already, are left out of later decodings.
CONTEXT_SECONDS = 1.0

Decode = Callable[[np.ndarray, DecodeOptions], Transcript]


@dataclass(frozen=True)
class Partial:
    """The text heard since the last final; it may still change."""

    text: str

    def message(self) -> dict:
        return {"type": "partial", "text": self.text}


@dataclass(frozen=True)
class Final:
    """Text that never changes, with its words' times in seconds from the start of the stream."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    language: str | None

    @classmethod
    def of(cls, words: list[Word], language: str | None) -> Final:
        return cls(joined(words), words[0].start, words[-1].end, tuple(words), language)

    def message(self) -> dict:
        return {
            "type": "final",
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "words": [w.model_dump() for w in self.words],
            "language": self.language,
        }


Event = Partial | Final


def joined(words: list[Word]) -> str:
    return "".join(w.word for w in words).strip()


def _key(word: Word) -> str:
    """A word as LocalAgreement compares it: case and punctuation aside."""
    return re.sub(r"[^\w']", "", word.word.lower())


def agreed_prefix(previous: list[Word], current: list[Word]) -> list[Word]:
    """LocalAgreement-2: the longest prefix of `current` that `previous` also starts with."""
    count = 0
    for a, b in zip(previous, current, strict=False):
        if _key(a) != _key(b):
            break
        count += 1
    return current[:count]


class Stream:
    """One live stream: the audio fed so far, the finals made, and the policy's state between steps."""

    def __init__(self, decode: Decode, language: str | None = None, prompt: str | None = None):
        self.decode = decode
        self.options = DecodeOptions(language=language or "auto", prompt=prompt or None)
        self.finals: list[Final] = []
        self._incoming: list[np.ndarray] = []  # fed, not yet taken by a step
        self._fed = 0  # samples fed in all
        self._lock = threading.Lock()
        self._buffer = np.zeros(0, dtype=np.float32)  # the audio whose text is not final, from _offset
        self._offset = 0  # samples of the stream before the buffer
        self._previous: list[Word] = []  # the last step's words (stream times): LocalAgreement's reference
        self._final_until = 0.0  # stream seconds: a decoded word centred before this is in a final already
        self._partial = ""

    def feed(self, samples: np.ndarray) -> None:
        """Audio at 16 kHz, float32 in [-1, 1]."""
        with self._lock:
            self._incoming.append(samples)
            self._fed += len(samples)

    @property
    def fed_seconds(self) -> float:
        return self._fed / SAMPLE_RATE

    @property
    def unstepped_seconds(self) -> float:
        """Audio fed since the last step began."""
        with self._lock:
            return sum(len(s) for s in self._incoming) / SAMPLE_RATE

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.finals if f.text)

    def step(self) -> list[Event]:
        """Decode what is buffered: finals for speech that is over, then the partial if its text changed."""
        self._take()
        speech = get_speech_timestamps(self._buffer, ENDPOINT_VAD)
        if not speech:
            self._drop(max(0, len(self._buffer) - int(KEEP_SILENCE_SECONDS * SAMPLE_RATE)))
            self._previous = []
            return self._partial_event([])
        words, language = self._hypothesis()
        events: list[Event] = []
        cut = self._endpoint(speech)
        if cut:
            ends = (self._offset + cut) / SAMPLE_RATE
            done = [w for w in words if (w.start + w.end) / 2 <= ends]
            events += self._final(done, language)
            words = words[len(done) :]
            self._drop(cut)
        elif len(self._buffer) / SAMPLE_RATE > AGREE_AFTER_SECONDS:
            settled_until = (self._offset + len(self._buffer)) / SAMPLE_RATE - SETTLED_SECONDS
            settled = list(takewhile(lambda w: w.end <= settled_until, words))
            done = max(agreed_prefix(self._previous, words), settled, key=len)
            if done:
                events += self._final(done, language)
                words = words[len(done) :]
                self._final_until = done[-1].end
                self._drop(round((done[-1].end - CONTEXT_SECONDS) * SAMPLE_RATE) - self._offset)
        self._previous = words
        return events + self._partial_event(words)

    def finish(self) -> list[Event]:
        """The end of the stream: everything still buffered becomes final."""
        self._take()
        events: list[Event] = []
        if len(self._buffer) and get_speech_timestamps(self._buffer, ENDPOINT_VAD):
            words, language = self._hypothesis()
            events += self._final(words, language)
        self._drop(len(self._buffer))
        self._previous = []
        return events

    # -- the parts of a step ------------------------------------------------------------------------------
    def _take(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
        if incoming:
            self._buffer = np.concatenate([self._buffer, *incoming])

    def _drop(self, samples: int) -> None:
        samples = max(0, min(samples, len(self._buffer)))
        self._buffer = self._buffer[samples:]
        self._offset += samples

    def _hypothesis(self) -> tuple[list[Word], str | None]:
        """The buffer decoded: its words in stream times, and its language."""
        transcript = self.decode(self._buffer, self.options)
        shift = self._offset / SAMPLE_RATE
        words = [
            w.model_copy(update={"start": round(w.start + shift, 3), "end": round(w.end + shift, 3)})
            for s in transcript.segments
            for w in s.words
            if (w.start + w.end) / 2 + shift > self._final_until
        ]
        return words, transcript.language

    def _endpoint(self, speech: list[dict]) -> int:
        """Buffer samples up to the end of the latest speech that a pause closed (0: none), once the buffer
        holds MIN_FINAL_SECONDS up to there or the pause lasted LONG_PAUSE_SECONDS."""
        bounds = [s["start"] for s in speech[1:]] + [len(self._buffer)]  # where each pause ends
        for segment, pause_end in reversed(list(zip(speech, bounds, strict=True))):
            end = min(segment["end"], pause_end)
            if end >= len(self._buffer):  # still talking
                continue
            if end >= MIN_FINAL_SECONDS * SAMPLE_RATE or pause_end - end >= LONG_PAUSE_SECONDS * SAMPLE_RATE:
                return end
        return 0

    def _final(self, words: list[Word], language: str | None) -> list[Event]:
        if not words:
            return []
        final = Final.of(words, language)
        self.finals.append(final)
        if language and self.options.language in (None, "auto"):  # the language heard first holds for the stream
            self.options = replace(self.options, language=language)
        self._partial = ""
        return [final]

    def _partial_event(self, words: list[Word]) -> list[Event]:
        text = joined(words)
        if text == self._partial:
            return []
        self._partial = text
        return [Partial(text)] if text else []
