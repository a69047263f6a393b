"""The transcript model and its renderers: txt, json, srt and vtt all come from one Transcript.

Captions (srt, vtt) are built from the word timestamps, not from Whisper's segments (which run to
30 s and hundreds of characters): cues of at most `lines_per_cue` lines of at most `chars_per_line`
characters and at most `max_cue_seconds`, cut at sentence ends, clause punctuation and pauses, never
inside a word (the common broadcast subtitle guidelines). `CaptionStyle` holds the knobs; the stored
srt/vtt use the deployment's defaults (hark.domain.settings) and the API re-renders others on request.

Confidence (issue 26): a segment's and the transcript's `confidence` is the mean of their words'
probabilities weighted by each word's duration (a long word the model was unsure of weighs more than a
short "a"); `low_confidence_share` is the share of the words' time under LOW_CONFIDENCE_PROBABILITY.
Corrections (`Transcript.corrected`): a person's text replaces a segment's, its words re-timed evenly
inside the segment (the API has no model to align them with: docs/api.md, "Corrections"), and speaker
labels get names that every rendering uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, computed_field, model_serializer

# The flags a segment can carry: what stayed doubtful after the worker's quality checks
# (worker/transcription/quality.py).
FLAGS = ("repetition", "low_confidence", "no_speech")

# A word the model gave a probability below this counts as doubtful (low_confidence_share); Whisper's words
# on clear speech are mostly above 0.8, and a wrong word is usually below one half.
LOW_CONFIDENCE_PROBABILITY = 0.5
# A word's duration counts at least this much in the weighting: Whisper gives some words start == end.
MIN_WORD_SECONDS = 0.02
# What a person wrote: certain (the probability of a word in a corrected segment).
CORRECTED_PROBABILITY = 1.0
MAX_SPEAKER_NAME = 64

# Speaker labels (issue 14): "A", "B", ... in order of first appearance; the most a job may expect.
MAX_SPEAKERS = 20  # speakers_expected, min_speakers and max_speakers: 1 to this
# Meetings and calls (issue 25): the highest audio stream index a job may name (audio_track, from 0), and
# the most channels a multichannel job may have (each is transcribed on its own; 8 covers 7.1 audio).
MAX_AUDIO_TRACK = 15
MAX_CHANNELS = 8


def speaker_label(index: int) -> str:
    """0 -> "A", 1 -> "B", ..., 25 -> "Z", 26 -> "AA"."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


class _Speaking(BaseModel):
    # Who said it (speaker labels, issue 14), and on which channel (multichannel jobs, issue 25: from 0).
    # Each is absent from the JSON when the job did not ask for it, so a transcript without them is byte
    # for byte what it was before they existed.
    speaker: str | None = None
    channel: int | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_speaker(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for name in ("speaker", "channel"):
            if isinstance(data, dict) and data.get(name, "") is None:
                del data[name]
        return data


class Word(_Speaking):
    start: float
    end: float
    word: str
    probability: float


def _weight(w: Word) -> float:
    return max(w.end - w.start, MIN_WORD_SECONDS)


def confidence(words: list[Word]) -> float | None:
    """The duration-weighted mean of the words' probabilities, in (0, 1]; None without words."""
    spoken = [w for w in words if w.word.strip()]
    if not spoken:
        return None
    total = sum(_weight(w) for w in spoken)
    return max(round(sum(w.probability * _weight(w) for w in spoken) / total, 4), 0.0001)


def low_confidence_share(words: list[Word]) -> float | None:
    """The share of the words' time spent on words below LOW_CONFIDENCE_PROBABILITY; None without words."""
    spoken = [w for w in words if w.word.strip()]
    if not spoken:
        return None
    doubtful = sum(_weight(w) for w in spoken if w.probability < LOW_CONFIDENCE_PROBABILITY)
    return round(doubtful / sum(_weight(w) for w in spoken), 4)


def spread_words(
    text: str, start: float, end: float, speaker: str | None = None, channel: int | None = None
) -> list[Word]:
    """`text`'s words timed evenly over [start, end], each as long as its characters (a space included):
    for a segment without word timestamps, and a segment a person corrected (CORRECTED_PROBABILITY)."""
    tokens = text.split()
    total = sum(len(tok) + 1 for tok in tokens)
    out: list[Word] = []
    at, span = start, max(end - start, 0.0)
    for tok in tokens:
        length = span * (len(tok) + 1) / total
        word = Word(start=round(at, 3), end=round(at + length, 3), word=" " + tok, probability=CORRECTED_PROBABILITY)
        out.append(word.model_copy(update={"speaker": speaker, "channel": channel}))
        at += length
    return out


class Segment(_Speaking):
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    # The language this segment was decoded in (identified per speech window); None in old transcripts.
    language: str | None = None
    # Doubtful text: a repetition loop, low confidence, or text where there was probably no speech.
    flags: list[str] = Field(default_factory=list)
    # Whisper's own measures of this segment's decode, as OpenAI's verbose_json gives them (its tokens, the
    # temperature it was decoded at). In memory only (`exclude`): a stored transcript keeps what they meant
    # as `flags`, so one read back has None here.
    tokens: list[int] | None = Field(default=None, exclude=True)
    temperature: float | None = Field(default=None, exclude=True)
    avg_logprob: float | None = Field(default=None, exclude=True)
    compression_ratio: float | None = Field(default=None, exclude=True)
    no_speech_prob: float | None = Field(default=None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def confidence(self) -> float | None:
        """The duration-weighted mean probability of the segment's words (None without word timestamps)."""
        return confidence(self.words)


class CorrectionRefused(ValueError):
    """A correction that does not fit the transcript (a segment index out of range, an unknown speaker)."""


class Transcript(BaseModel):
    language: str | None  # None when no speech was detected: no language is claimed
    language_probability: float | None = None
    # The share of the speech (by segment duration) in `language`; below 1 when the recording mixes languages.
    language_share: float | None = None
    duration: float
    model: str
    segments: list[Segment]
    # Names people gave the speaker labels ({"A": "Morgan"}, PUT /jobs/{id}/transcript): every rendering
    # shows the name. Absent from the JSON when there are none.
    speaker_names: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _drop_no_names(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and not data.get("speaker_names", True):
            del data["speaker_names"]
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        """The whole transcript as one string (in the JSON beside `segments`)."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def confidence(self) -> float | None:
        """The duration-weighted mean probability of every word (None with no words)."""
        return confidence([w for s in self.segments for w in s.words])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def low_confidence_share(self) -> float | None:
        """The share of the words' time below LOW_CONFIDENCE_PROBABILITY (None with no words)."""
        return low_confidence_share([w for s in self.segments for w in s.words])

    def corrected(self, texts: dict[int, str], speaker_names: dict[str, str | None]) -> Transcript:
        """This transcript with the segments at `texts`' indices given a person's text (their words re-timed
        evenly inside the segment, certain, and their flags cleared: a person read them) and the speaker
        labels in `speaker_names` named (None removes a name). CorrectionRefused names what does not fit."""
        last = len(self.segments) - 1
        for index in sorted(texts):
            if not 0 <= index <= last:
                within = f"0 to {last}" if last >= 0 else "none: the transcript is empty"
                raise CorrectionRefused(f"segments: there is no segment {index} (the indices are {within})")
        labels = {x.speaker for s in self.segments for x in (s, *s.words) if x.speaker}
        for label, name in speaker_names.items():
            if label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise CorrectionRefused(f"speaker_names: no speaker {label[:20]!r} in this transcript (its: {known})")
            if name is not None and (not name.strip() or len(name) > MAX_SPEAKER_NAME or not name.isprintable()):
                raise CorrectionRefused(
                    f"speaker_names.{label}: a name is 1 to {MAX_SPEAKER_NAME} printable characters, or null"
                )
        segments = list(self.segments)
        for index, text in texts.items():
            s = segments[index]
            text = " ".join(text.split())
            words = spread_words(text, s.start, s.end, s.speaker, s.channel)
            segments[index] = s.model_copy(update={"text": text, "words": words, "flags": []})
        names = {**self.speaker_names, **speaker_names}
        return self.model_copy(
            update={"segments": segments, "speaker_names": {k: v.strip() for k, v in names.items() if v}}
        )

    def with_segments(self, more: list[Segment]) -> Transcript:
        """The same transcript with `more` segments (decoded apart, on the same timeline) in time order."""
        return self.model_copy(update={"segments": sorted([*self.segments, *more], key=lambda s: s.start)})

    def shifted(self, offset: float) -> Transcript:
        """The same transcript with every timestamp moved by `offset` seconds (chunk assembly)."""
        return self.model_copy(
            update={
                "segments": [
                    s.model_copy(
                        update={
                            "start": s.start + offset,
                            "end": s.end + offset,
                            "words": [
                                w.model_copy(update={"start": w.start + offset, "end": w.end + offset}) for w in s.words
                            ],
                        }
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
        language, share = dominant_language(segments)
        if language is None:
            # Segments without a language (old parts): the language of the longest chunks that said
            # something wins; with no speech anywhere there is no language (None).
            by_language: dict[str, float] = {}
            for _, t in parts:
                if t.language and t.text:
                    by_language[t.language] = by_language.get(t.language, 0.0) + t.duration
            language = max(by_language, key=lambda code: by_language[code]) if by_language else None
        return cls(language=language, language_share=share, duration=duration, model=model, segments=segments)

    def on_channel(self, channel: int) -> Transcript:
        """The same transcript with every segment and word said on `channel`, by that channel's speaker
        (A for 0, B for 1, ...): a multichannel job's channel is one person."""
        who = {"channel": channel, "speaker": speaker_label(channel)}
        return self.model_copy(
            update={
                "segments": [
                    s.model_copy(update={**who, "words": [w.model_copy(update=who) for w in s.words]})
                    for s in self.segments
                ]
            }
        )

    @classmethod
    def merged(cls, channels: list[Transcript], model: str) -> Transcript:
        """One transcript from each channel's (on_channel), its segments in time order (turns interleave)."""
        segments = sorted((s for t in channels for s in t.segments), key=lambda s: (s.start, s.channel or 0))
        language, share = dominant_language(segments)
        probability = next((t.language_probability for t in channels if t.language == language), None)
        return cls(
            language=language,
            language_probability=probability,
            language_share=share,
            duration=max((t.duration for t in channels), default=0.0),
            model=model,
            segments=segments,
        )


def dominant_language(segments: list[Segment]) -> tuple[str | None, float | None]:
    """The language spoken longest (by segment duration) and its share of the speech, rounded to 3 places."""
    by_language: dict[str, float] = {}
    for s in segments:
        if s.language and s.text.strip():
            by_language[s.language] = by_language.get(s.language, 0.0) + max(s.end - s.start, 0.0)
    total = sum(by_language.values())
    if not by_language or total <= 0:
        return None, None
    language = max(by_language, key=lambda code: by_language[code])
    return language, round(by_language[language] / total, 3)


# -- captions --------------------------------------------------------------------------------------------
# Limits a request may ask for (GET /jobs/{id}/transcript, the CLI, the web page).
MIN_CHARS_PER_LINE, MAX_CHARS_PER_LINE = 16, 84
MIN_LINES_PER_CUE, MAX_LINES_PER_CUE = 1, 3
SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
CLAUSE_END = (",", ";", ":", "—", "–", "、", "，", "；", "：")
CLOSERS = "\"')]}”’»"


@dataclass(frozen=True)
class CaptionStyle:
    chars_per_line: int = 42
    lines_per_cue: int = 2
    max_cue_seconds: float = 7.0
    # A silence at least this long between two words is as good a place to cut as a sentence end.
    pause_seconds: float = 0.5

    @classmethod
    def default(cls) -> CaptionStyle:
        from hark.domain.settings import get_settings

        s = get_settings()
        return cls(
            s.caption_chars_per_line, s.caption_lines_per_cue, s.caption_max_cue_seconds, s.caption_pause_seconds
        )

    @property
    def max_chars(self) -> int:
        return self.chars_per_line * self.lines_per_cue


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None  # every word of a cue has one speaker: cues are cut where the speaker changes


def _ends_with(text: str, marks: tuple[str, ...]) -> bool:
    return text.rstrip().rstrip(CLOSERS).endswith(marks)


def _line(words: list[Word]) -> str:
    # Whisper's words carry their leading space ("" in languages written without spaces).
    return "".join(w.word for w in words).strip()


def _words(t: Transcript) -> list[Word]:
    """Every word in time order (a multichannel job's segments overlap: one channel's long segment spans the
    other's turns). A segment without word timestamps counts as words spread evenly over it."""
    out: list[Word] = []
    for s in t.segments:
        if not s.text.strip():
            continue
        out += (
            [w for w in s.words if w.word.strip()]
            if s.words
            else spread_words(s.text, s.start, s.end, s.speaker, s.channel)
        )
    if t.speaker_names:  # the names people gave the labels, in every rendering (one name may join two labels)
        out = [w.model_copy(update={"speaker": t.speaker_names.get(w.speaker or "", w.speaker)}) for w in out]
    return sorted(out, key=lambda w: w.start) if has_channels(t) else out


def _break_score(words: list[Word], k: int, style: CaptionStyle) -> int:
    """How good a cut after words[k] is: 3 sentence end or pause, 2 clause punctuation, 1 any other word gap."""
    text = words[k].word
    pause = words[k + 1].start - words[k].end if k + 1 < len(words) else float("inf")
    if _ends_with(text, SENTENCE_END) or pause >= style.pause_seconds:
        return 3
    if _ends_with(text, CLAUSE_END):
        return 2
    return 1


def wrap(words: list[Word], style: CaptionStyle, reserve: int = 0) -> tuple[str, ...] | None:
    """The words in as few lines as fit (at most `lines_per_cue` of at most `chars_per_line`), with the
    longest line as short as possible (ties: lines ending at punctuation, then a shorter top line);
    None if they do not fit. A single word longer than a line gets a line of its own, never cut.
    `reserve` characters of the first line are taken by something else (SRT's "A: " speaker prefix)."""
    n = len(words)

    def limit(i: int) -> int:
        return style.chars_per_line - (reserve if i == 0 else 0)

    def solve(i: int, count: int, memo: dict) -> tuple[tuple[int, int, int], tuple[str, ...]] | None:
        # words[i:] in exactly `count` lines: (cost, lines), or None.
        if (i, count) in memo:
            return memo[(i, count)]
        result: tuple[tuple[int, int, int], tuple[str, ...]] | None = None
        if count == 1:
            line = _line(words[i:])
            if len(line) <= limit(i) or n - i == 1:
                result = ((len(line) + (reserve if i == 0 else 0), 0, 0), (line,))
        else:
            for j in range(i + 1, n - count + 2):
                first = _line(words[i:j])
                if len(first) > limit(i) and j - i > 1:
                    break
                rest = solve(j, count - 1, memo)
                if rest is None:
                    continue
                (longest, unpunctuated, _), lines = rest
                plain = 0 if _ends_with(first, SENTENCE_END + CLAUSE_END) else 1
                shown = len(first) + (reserve if i == 0 else 0)  # as wide as it is displayed
                cost = (max(shown, longest), plain + unpunctuated, shown)
                if result is None or cost < result[0]:
                    result = (cost, (first, *lines))
        memo[(i, count)] = result
        return result

    for count in range(1, min(style.lines_per_cue, n) + 1):
        solved = solve(0, count, {})
        if solved:
            return solved[1]
    return None


def _fits(words: list[Word], style: CaptionStyle, reserve: int = 0) -> bool:
    """Whether wrap() finds lines for these words: filling lines greedily uses the fewest lines."""
    lines, length = 1, -1
    for w in words:
        size = len(w.word.strip())
        gap = 0 if length <= 0 or not w.word[:1].isspace() else 1
        limit = style.chars_per_line - (reserve if lines == 1 else 0)
        if length >= 0 and length + gap + size > limit:
            lines, length = lines + 1, size
        else:
            length = size if length < 0 else length + gap + size
    return lines <= style.lines_per_cue


def captions(t: Transcript, style: CaptionStyle | None = None, speaker_prefix: bool = False) -> list[Cue]:
    """Cues from the word timestamps. Each cue takes as many words as fit (lines of characters, seconds,
    no silence of 3 x `pause_seconds` inside) and, unless it already ends at a sentence end or a pause,
    ends at the best break among them: a sentence end or pause (3), else clause punctuation (2), else any
    word gap (1); the latest of equals, but never a cut that keeps under a third of the characters that fit.
    With `speaker_prefix` (SRT) a cue's first line keeps room for the "A: " put before it."""
    style = style or CaptionStyle.default()
    words = _words(t)
    cues: list[Cue] = []
    i = 0
    while i < len(words):
        # The furthest word that still fits: characters and lines, duration, and no long silence inside.
        j = i
        reserve = len(_prefix(words[i].speaker)) if speaker_prefix else 0
        while j + 1 < len(words):
            nxt = j + 1
            if words[nxt].end - words[i].start > style.max_cue_seconds:
                break
            if words[nxt].start - words[j].end >= 3 * style.pause_seconds:  # nobody reads a caption over silence
                break
            if words[nxt].speaker != words[i].speaker:  # one voice per cue
                break
            if not _fits(words[i : nxt + 1], style, reserve):
                break
            j = nxt
        cut = j
        if j + 1 < len(words) and _break_score(words, j, style) < 3:
            fitted = len(_line(words[i : j + 1]))
            best_score = 0
            for k in range(i, j + 1):
                if k < j and 3 * len(_line(words[i : k + 1])) < fitted:
                    continue
                score = _break_score(words, k, style)
                if score >= best_score:
                    best_score, cut = score, k
        lines = wrap(words[i : cut + 1], style, reserve) or (_line(words[i : cut + 1]),)
        cues.append(Cue(start=words[i].start, end=words[cut].end, lines=lines, speaker=words[i].speaker))
        i = cut + 1
    return cues


def _prefix(speaker: str | None) -> str:
    return f"{speaker}: " if speaker else ""


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def speaker_turns(t: Transcript) -> list[tuple[str, str]]:
    """(speaker, text) for each run of words by one speaker, in time order."""
    turns: list[tuple[str, list[Word]]] = []
    for w in _words(t):
        speaker = w.speaker or "?"
        if turns and turns[-1][0] == speaker:
            turns[-1][1].append(w)
        else:
            turns.append((speaker, [w]))
    return [(speaker, _line(words)) for speaker, words in turns]


def has_channels(t: Transcript) -> bool:
    return any(s.channel is not None for s in t.segments)


def has_speakers(t: Transcript) -> bool:
    return any(s.speaker is not None for s in t.segments)


def render_txt(t: Transcript) -> str:
    if has_speakers(t):  # one paragraph per turn: "A: ..."
        return "".join(f"{speaker}: {text}\n" for speaker, text in speaker_turns(t))
    return "\n".join(s.text.strip() for s in t.segments if s.text.strip()) + "\n"


def render_json(t: Transcript) -> str:
    return t.model_dump_json(indent=2)


def render_srt(t: Transcript, style: CaptionStyle | None = None) -> str:
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n"
        + _prefix(c.speaker)  # SRT has no voice tag: a prefix, as broadcasters do (room kept for it)
        + "\n".join(c.lines)
        + "\n"
        for i, c in enumerate(captions(t, style, speaker_prefix=True), start=1)
    ]
    return "\n".join(blocks)


def render_vtt(t: Transcript, style: CaptionStyle | None = None) -> str:
    blocks = [
        f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n"
        + (f"<v {_vtt_escape(c.speaker)}>" if c.speaker else "")  # WebVTT voice span
        + "\n".join(_vtt_escape(line) for line in c.lines)
        + "\n"
        for c in captions(t, style)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


RENDERERS = {"txt": render_txt, "json": render_json, "srt": render_srt, "vtt": render_vtt}
CAPTION_FORMATS = ("srt", "vtt")
CAPTION_RENDERERS = {"srt": render_srt, "vtt": render_vtt}
CONTENT_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
