"""The decoding child: `python -m worker.transcription.decoder IN OUT MAX_SAMPLES MEMORY_BYTES [TRACK [CHANNELS]]`.

It decodes IN's audio stream number TRACK (from 0, among its audio streams; default the first: a video's
frames are never decoded) as a stream to 16 kHz mono 16-bit PCM in OUT or, with CHANNELS = "split", each
channel to its own file OUT.0, OUT.1, ... (multichannel jobs), counting the samples as they arrive and
stopping once there are more than MAX_SAMPLES, whatever the container's header says (FLAC STREAMINFO,
WAV data size, MP4 duration boxes, Ogg granule positions are never read for the length). Its address
space is limited to MEMORY_BYTES (RLIMIT_AS) before the decoder is loaded, so a file built to make the
decoder allocate fails only this process, never the worker and the other jobs it holds.

It prints one JSON line: {"samples", "longer", "channels", "peak_rss_bytes"} (samples per channel), or
{"error": reason} for a file that cannot be decoded. Only the standard library and PyAV are imported: the limit has to leave them room.
"""

from __future__ import annotations

import json
import resource
import sys

RATE = 16000
BYTES_PER_SAMPLE = 2  # s16
MAX_CHANNELS = 8  # hark.domain.transcript.MAX_CHANNELS (not imported: only the standard library and PyAV fit the limit)


def peak_rss_bytes() -> int:
    """This process's peak resident memory since its exec (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that over from before the exec, where it is the forking worker's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def decode(source: str, dest: str, max_samples: int, track: int = 0, split: bool = False) -> dict:
    import av

    with av.open(source, mode="r", metadata_errors="ignore") as container:
        streams = container.streams.audio
        if not streams:
            return {"error": "not an audio file (it has no audio track)"}
        if track >= len(streams):
            return {
                "error": f"the file has {len(streams)} audio track{'s' if len(streams) > 1 else ''}; audio_track "
                f"{track} is not one of them (they count from 0)"
            }
        stream = streams[track]
        stream.codec_context.thread_count = 1  # one decoding thread: each would reserve its own stack
        channels = stream.codec_context.channels if split else 1
        if not 1 <= channels <= MAX_CHANNELS:
            return {"error": f"the audio track has {channels} channels; a multichannel job takes 1 to {MAX_CHANNELS}"}
        paths = [f"{dest}.{c}" for c in range(channels)] if split else [dest]
        outs = [open(path, "wb") for path in paths]
        try:
            layout = stream.codec_context.layout if split else "mono"  # split: the channels as they are
            result = _stream(container.decode(stream), outs, layout, max_samples)
        finally:
            for out in outs:
                out.close()
        return {**result, "channels": channels}


def _stream(frames, outs: list, layout, max_samples: int) -> dict:
    import av

    # Planar s16: one plane per channel, each written to its own file (one plane, mono, when not split).
    resampler = av.AudioResampler(format="s16p", layout=layout, rate=RATE)
    samples = 0
    while True:
        try:
            frame = next(frames, None)
        except av.error.InvalidDataError:  # a damaged frame is skipped, as faster-whisper's decoder does
            continue
        for resampled in resampler.resample(frame):  # None flushes what the resampler holds
            count = resampled.samples
            for out, plane in zip(outs, resampled.planes):
                out.write(memoryview(plane)[: count * BYTES_PER_SAMPLE])
            samples += count
            if samples > max_samples:
                return {"samples": samples, "longer": True}
        if frame is None:
            return {"samples": samples, "longer": False}


def main(argv: list[str]) -> int:
    source, dest, max_samples, memory_bytes = argv[0], argv[1], int(argv[2]), int(argv[3])
    track = int(argv[4]) if len(argv) > 4 else 0
    split = len(argv) > 5 and argv[5] == "split"
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        import av
    except MemoryError:  # the limit must leave room for the decoder itself: a setting, not the file
        print(json.dumps({"fault": f"the decoder does not fit in {memory_bytes} bytes"}))
        return 1
    try:
        result = decode(source, dest, max_samples, track, split)
    except MemoryError:  # Python's, or FFmpeg's ENOMEM (av.error.MemoryError is both)
        result = {"error": "decoding the file needed more memory than a decoder may use"}
    except (av.error.FFmpegError, ValueError):  # ValueError: frames whose format changes midway
        result = {"error": "not an audio file (it could not be decoded)"}
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
