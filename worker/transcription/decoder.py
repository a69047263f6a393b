"""The decoding child: `python -m worker.transcription.decoder IN OUT MAX_SAMPLES MEMORY_BYTES`.

It decodes IN as a stream to 16 kHz mono 16-bit PCM in OUT, counting the samples as they arrive and
stopping once there are more than MAX_SAMPLES, whatever the container's header says (FLAC STREAMINFO,
WAV data size, MP4 duration boxes, Ogg granule positions are never read for the length). Its address
space is limited to MEMORY_BYTES (RLIMIT_AS) before the decoder is loaded, so a file built to make the
decoder allocate fails only this process, never the worker and the other jobs it holds.

It prints one JSON line: {"samples", "longer", "peak_rss_bytes"}, or {"error": reason} for a file that
cannot be decoded. Only the standard library and PyAV are imported: the limit has to leave them room.
"""

from __future__ import annotations

import json
import resource
import sys

RATE = 16000
BYTES_PER_SAMPLE = 2  # s16 mono


def peak_rss_bytes() -> int:
    """This process's peak resident memory since its exec (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that over from before the exec, where it is the forking worker's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def decode(source: str, dest: str, max_samples: int) -> dict:
    import av

    samples = 0
    with av.open(source, mode="r", metadata_errors="ignore") as container, open(dest, "wb") as out:
        if not container.streams.audio:
            return {"error": "not an audio file (it has no audio track)"}
        stream = container.streams.audio[0]
        stream.codec_context.thread_count = 1  # one decoding thread: each would reserve its own stack
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames, None)
            except av.error.InvalidDataError:  # a damaged frame is skipped, as faster-whisper's decoder does
                continue
            for resampled in resampler.resample(frame):  # None flushes what the resampler holds
                count = resampled.samples
                out.write(memoryview(resampled.planes[0])[: count * BYTES_PER_SAMPLE])
                samples += count
                if samples > max_samples:
                    return {"samples": samples, "longer": True}
            if frame is None:
                return {"samples": samples, "longer": False}


def main(argv: list[str]) -> int:
    source, dest, max_samples, memory_bytes = argv[0], argv[1], int(argv[2]), int(argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        import av
    except MemoryError:  # the limit must leave room for the decoder itself: a setting, not the file
        print(json.dumps({"fault": f"the decoder does not fit in {memory_bytes} bytes"}))
        return 1
    try:
        result = decode(source, dest, max_samples)
    except MemoryError:  # Python's, or FFmpeg's ENOMEM (av.error.MemoryError is both)
        result = {"error": "decoding the file needed more memory than a decoder may use"}
    except (av.error.FFmpegError, ValueError):  # ValueError: frames whose format changes midway
        result = {"error": "not an audio file (it could not be decoded)"}
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
