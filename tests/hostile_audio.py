"""A corpus of broken and hostile audio files, made on the spot with sox, ffmpeg and a few byte patches
(issue 21): truncated files, headers that lie about the length (FLAC STREAMINFO, WAV data size, MP4
duration boxes, Ogg granule positions), streams with no samples, 8 channels, 1 Hz and 384 kHz, a text
file named .mp3, a 0-byte file and an Opus file with the largest pre-skip.

Each entry says what a worker must make of it, from what the file is: `reason` (the start of the job's
error) for a file that cannot be transcribed, or `seconds` for valid audio: the audio really in it (a
codec's frame more for AAC's priming; a truncated file anywhere up to where it was cut).
"""

from __future__ import annotations

import struct
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NOT_AUDIO = "not an audio file"
NO_SOUND = "the recording contains no sound"
EMPTY = "the file is empty"
TOO_LONG = "the recording is longer than the maximum of"


@dataclass(frozen=True)
class Hostile:
    name: str  # the file name, its extension the format it claims
    path: Path
    reason: str | None = None  # how its job must fail
    seconds: tuple[float, float] | None = None  # or: the audio really in it, as decoded, at least and at most


def sox(dest: Path, *effect: str, rate: int = 16000, channels: int = 1, seconds: float = 3) -> Path:
    subprocess.run(
        ["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(dest), "synth", str(seconds), *effect],
        check=True,
    )
    return dest


def ffmpeg(source: Path, dest: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *args, str(dest)], check=True)
    return dest


def tone(dest: Path, seconds: float = 3, rate: int = 16000, channels: int = 1) -> Path:
    return sox(dest, "sine", "300-900", rate=rate, channels=channels, seconds=seconds)


# -- byte patches ------------------------------------------------------------------------------------------
def flac_claiming(source: Path, total_samples: int) -> bytes:
    """FLAC bytes whose STREAMINFO says `total_samples` (36 bits from bit 108 of the block, which starts
    at byte 8 after "fLaC" and the block header)."""
    data = bytearray(source.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO first"
    data[21] = (data[21] & 0xF0) | (total_samples >> 32 & 0x0F)
    data[22:26] = struct.pack(">I", total_samples & 0xFFFFFFFF)
    return bytes(data)


def wav_with_data_size(source: Path, size: int) -> bytes:
    """A WAV file whose data chunk declares `size` bytes, whatever follows."""
    data = bytearray(source.read_bytes())
    at = data.index(b"data", 12)
    data[at + 4 : at + 8] = struct.pack("<I", size)
    return bytes(data)


def mp4_with_durations(source: Path, duration: int) -> bytes:
    """An MP4 whose mvhd, tkhd and mdhd boxes all give `duration` (version 0 boxes: 32-bit fields)."""
    data = bytearray(source.read_bytes())
    # Offsets of the duration field from the box type: mvhd/mdhd after version+flags, two times and the
    # timescale; tkhd after version+flags, two times, the track id and a reserved word.
    for box, offset in ((b"mvhd", 4 + 4 + 4 + 4 + 4), (b"mdhd", 4 + 4 + 4 + 4 + 4), (b"tkhd", 4 + 4 + 4 + 4 + 4 + 4)):
        at = data.index(box)
        assert data[at + 4] == 0, f"{box!r} version 0"
        data[at + offset : at + offset + 4] = struct.pack(">I", duration)
    return bytes(data)


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each Ogg page."""
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        segments = data[at + 26]
        body = sum(data[at + 27 : at + 27 + segments])
        end = at + 27 + segments + body
        pages.append((at, end))
        at = end
    return pages


def ogg_patched(data: bytes, page_index: int, patch) -> bytes:
    """Ogg bytes with one page changed by `patch(bytearray page)` and its checksum made right again."""
    out = bytearray(data)
    start, end = ogg_pages(data)[page_index]
    page = bytearray(out[start:end])
    patch(page)
    page[22:26] = b"\0\0\0\0"
    page[22:26] = struct.pack("<I", _ogg_crc(bytes(page)))
    out[start:end] = page
    return bytes(out)


def ogg_claiming_granule(source: Path, granule: int) -> bytes:
    """Every audio page's granule position (the samples up to its end) set to `granule`."""
    data = source.read_bytes()
    for index in range(2, len(ogg_pages(data))):  # after the identification and comment headers

        def claim(page: bytearray) -> None:
            page[6:14] = struct.pack("<q", granule)

        data = ogg_patched(data, index, claim)
    return data


def opus_pre_skip(source: Path) -> int:
    data = source.read_bytes()
    head = data.index(b"OpusHead")
    return struct.unpack("<H", data[head + 10 : head + 12])[0]


def opus_with_pre_skip(source: Path, pre_skip: int) -> bytes:
    """An Ogg Opus file whose OpusHead asks the decoder to drop `pre_skip` samples (48 kHz) first."""

    def skip(page: bytearray) -> None:
        head = page.index(b"OpusHead")
        page[head + 10 : head + 12] = struct.pack("<H", pre_skip)

    return ogg_patched(source.read_bytes(), 0, skip)


def wav_at(dest: Path, rate: int, samples: np.ndarray, channels: int = 1) -> Path:
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return dest


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- the corpus ----------------------------------------------------------------------------------------------
SECONDS = 8  # each valid file's length
# Within a codec's frame: Opus may trim a few ms of its padding, AAC keeps some of its priming.
WHOLE = (SECONDS - 0.02, SECONDS + 0.065)


def corpus(tmp: Path) -> list[Hostile]:
    """Every hostile file, made in `tmp`. Lengths are kept to seconds: what a lie claims is in the header."""
    tmp.mkdir(parents=True, exist_ok=True)
    flac = tone(tmp / "tone.flac", seconds=SECONDS)
    wav = tone(tmp / "tone.wav", seconds=SECONDS)
    mp3 = ffmpeg(wav, tmp / "tone.mp3", "-b:a", "64k")
    m4a = ffmpeg(wav, tmp / "tone.m4a", "-c:a", "aac", "-b:a", "64k")
    ogg = ffmpeg(wav, tmp / "tone.ogg", "-c:a", "libvorbis")
    opus = ffmpeg(wav, tmp / "tone.opus", "-c:a", "libopus")
    short_opus = ffmpeg(tone(tmp / "short.wav", seconds=3), tmp / "short.opus", "-c:a", "libopus")
    # The decoder drops the pre-skip (the encoder's own delay, then the rest of the audio): what remains.
    after_skip = 3 - (0xFFFF - opus_pre_skip(short_opus)) / 48000
    silent_wav = wav_at(tmp / "nothing.wav", 16000, np.zeros(0))
    hour = 3600 * 16000
    half = {p: p.read_bytes()[: p.stat().st_size // 2] for p in (flac, wav, mp3, ogg)}
    return [
        # truncated to half the bytes: what is there is audio and is transcribed, up to where it stops (about
        # half of it: more than a tenth, less than nine tenths, as bits per second vary along the sweep)
        *(
            Hostile(f"truncated.{p.suffix[1:]}", write(tmp / f"truncated{p.suffix}", b), seconds=(0.1, SECONDS * 0.9))
            for p, b in half.items()
        ),
        # an MP4 cut before its index (moov at the end, as ffmpeg writes it): nothing says where the samples are
        Hostile(
            "truncated.m4a", write(tmp / "truncated.m4a", m4a.read_bytes()[: m4a.stat().st_size // 2]), reason=NOT_AUDIO
        ),
        # headers that lie about the length: the audio decoded is what counts, either way
        Hostile("claims-1s.flac", write(tmp / "claims-1s.flac", flac_claiming(flac, 16000)), seconds=WHOLE),
        Hostile("claims-10h.flac", write(tmp / "claims-10h.flac", flac_claiming(flac, 10 * hour)), seconds=WHOLE),
        Hostile("claims-1s.wav", write(tmp / "claims-1s.wav", wav_with_data_size(wav, 32000)), seconds=(1, 1)),
        Hostile("claims-4gb.wav", write(tmp / "claims-4gb.wav", wav_with_data_size(wav, 0xFFFFFFFF)), seconds=WHOLE),
        Hostile("claims-1-tick.m4a", write(tmp / "claims-1-tick.m4a", mp4_with_durations(m4a, 1)), seconds=WHOLE),
        Hostile("claims-long.m4a", write(tmp / "claims-long.m4a", mp4_with_durations(m4a, 0xFFFFFFF0)), seconds=WHOLE),
        Hostile("claims-0.ogg", write(tmp / "claims-0.ogg", ogg_claiming_granule(ogg, 0)), seconds=WHOLE),
        Hostile("claims-10h.ogg", write(tmp / "claims-10h.ogg", ogg_claiming_granule(ogg, 10 * hour)), seconds=WHOLE),
        Hostile(
            "claims-10h.opus",
            write(tmp / "claims-10h.opus", ogg_claiming_granule(opus, 10 * 3600 * 48000)),
            seconds=WHOLE,
        ),
        # streams with no samples
        Hostile("nothing.wav", silent_wav, reason=NO_SOUND),
        # the FLAC signature and STREAMINFO only (the next metadata block and the frames cut off)
        Hostile("header-only.flac", write(tmp / "header-only.flac", flac.read_bytes()[:42]), reason=NOT_AUDIO),
        # odd shapes of valid audio
        Hostile("8-channels.wav", tone(tmp / "8-channels.wav", seconds=3, channels=8), seconds=(3, 3)),
        Hostile("384khz.flac", tone(tmp / "384khz.flac", seconds=3, rate=384000), seconds=(3, 3)),
        # 1 Hz: 20,000 samples are 5.6 hours once resampled to 16 kHz, in a 40 KB file
        Hostile("1hz.wav", wav_at(tmp / "1hz.wav", 1, (np.sin(np.arange(20000)) * 8000)), reason=TOO_LONG),
        # not audio at all
        Hostile("notes.mp3", write(tmp / "notes.mp3", b"Meeting notes, not a recording.\n" * 100), reason=NOT_AUDIO),
        Hostile("empty.mp3", write(tmp / "empty.mp3", b""), reason=EMPTY),
        # the largest pre-skip Opus allows (65535 samples at 48 kHz, 1.37 s) over 3 s of audio
        Hostile(
            "pre-skip.opus",
            write(tmp / "pre-skip.opus", opus_with_pre_skip(short_opus, 0xFFFF)),
            seconds=(after_skip - 0.001, after_skip + 0.001),
        ),
    ]


def lying_flac(dest: Path, hours: float, claims_seconds: float = 1.0) -> Path:
    """`hours` of digital silence as FLAC (mono 44.1 kHz: ~0.5 MB an hour) whose STREAMINFO claims `claims_seconds`."""
    rate = 44100
    raw = dest.with_suffix(".raw.flac")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=mono", "-t", str(hours * 3600)]
        + ["-c:a", "flac", "-sample_fmt", "s16", str(raw)],
        check=True,
    )
    dest.write_bytes(flac_claiming(raw, int(claims_seconds * rate)))
    raw.unlink()
    return dest
