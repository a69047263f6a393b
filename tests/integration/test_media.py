"""Meeting and call recordings through the transcription worker (issue 25): videos in the common
containers (the audio stream asked for, the first by default) and a stereo call transcribed per channel.

The recordings are made at test time from the shared speech (tests/media.py): videos with a tiny picture,
and a call of two people taking turns, one per channel. One worker takes every job at once.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import requests

from hark.domain import aws, keys
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.settings import Settings, get_settings
from hark.domain.uploads import content_type_for
from hark.domain.wer import word_error_rate
from tests import media
from tests.conftest import SHARED_SPEECH
from tests.integration.test_audio_link import get_audio
from tests.integration.test_transcription_worker import post_upload, read_transcript, reference, wait_finished
from worker.transcription import audio

JFK = SHARED_SPEECH / "en_jfk.flac"
LIBRI = SHARED_SPEECH / "en_librispeech_2412-153948-0000.flac"
FLEURS = SHARED_SPEECH / "en_fleurs_005.ogg"
QUILTER = SHARED_SPEECH / "en_librispeech_1272-128104-0000.wav"


def submit(path: Path, **options) -> Job:
    job_id = new_job_id()
    content_type = content_type_for(path.name)
    job = Job(
        job_id=job_id,
        user_id="user_media",
        filename=path.name,
        content_type=content_type,
        size_bytes=path.stat().st_size,
        audio_key=keys.upload_key("user_media", job_id, path.name),
        status=JobStatus.UPLOADING,
        created_at=now_iso(),
        updated_at=now_iso(),
        **options,
    )
    aws.job_store().jobs.create(job)
    post_upload(job.audio_key, path, content_type)
    return job


def test_videos_and_a_stereo_call_are_transcribed(stack, workers, tmp_path):
    clips = {path: audio.load(path, 3600) for path in (JFK, LIBRI, FLEURS, QUILTER)}
    videos = {  # each container with speech of its own; the mp4 has two tracks and asks for the second
        media.video(tmp_path / "standup.mov", [clips[JFK]]): ({}, JFK),
        media.video(tmp_path / "review.mkv", [clips[LIBRI]]): ({}, LIBRI),
        media.video(tmp_path / "demo.webm", [clips[FLEURS]]): ({}, FLEURS),
        media.video(tmp_path / "interpreted.mp4", [clips[JFK], clips[QUILTER]]): ({"audio_track": 1}, QUILTER),
        media.video(tmp_path / "old.avi", [clips[QUILTER]]): ({}, QUILTER),
    }
    call, turns = media.stereo_call(LIBRI, JFK)
    stereo = media.wav(tmp_path / "call.wav", call)
    missing_track = media.video(tmp_path / "one-track.mkv", [clips[QUILTER]])

    worker = workers()
    jobs = {path: submit(path, **options) for path, (options, _) in videos.items()}
    call_job = submit(stereo, multichannel=True)
    bad_track = submit(missing_track, audio_track=1)
    finished = wait_finished([j.job_id for j in [*jobs.values(), call_job, bad_track]])

    for path, job in jobs.items():
        done = finished[job.job_id]
        assert done.status == JobStatus.COMPLETED, (path.name, done.error)
        text, _ = read_transcript(job, "txt")
        error = word_error_rate(reference(videos[path][1].name), text, "en")
        print(f"{path.name}: WER {error:.1%}")
        assert error < 0.25, (path.name, text)
        assert_played_as_rendition(done, path, tmp_path, track=videos[path][0].get("audio_track", 0))

    # A track the file does not have fails the job, and says how many it has.
    assert finished[bad_track.job_id].status == JobStatus.FAILED
    assert finished[bad_track.job_id].error == (
        "the file has 1 audio track; audio_track 1 is not one of them (they count from 0)"
    )

    # The call: every word carries its channel, and each person's words are on their own channel.
    assert finished[call_job.job_id].status == JobStatus.COMPLETED, finished[call_job.job_id].error
    data = json.loads(read_transcript(call_job, "json")[0])
    words = [w for s in data["segments"] for w in s["words"]]
    assert words and all(w["channel"] in (0, 1) and w["speaker"] == "AB"[w["channel"]] for w in words)
    assert all(s["channel"] in (0, 1) for s in data["segments"])
    assert [s["start"] for s in data["segments"]] == sorted(s["start"] for s in data["segments"])
    for channel in (0, 1):
        said = [w for w in words if _turn(turns, (w["start"] + w["end"]) / 2) == channel]
        assert said and sum(w["channel"] == channel for w in said) >= 0.9 * len(said)
    person = {0: LIBRI, 1: JFK}
    for channel in (0, 1):
        text = "".join(w["word"] for w in words if w["channel"] == channel)
        assert word_error_rate(reference(person[channel].name), text, "en") < 0.25, text
    # txt shows the turns: first, second, first, second.
    txt = read_transcript(call_job, "txt")[0]
    assert [line.split(":")[0] for line in txt.splitlines()] == ["A", "B", "A", "B"], txt
    assert "<v A>" in read_transcript(call_job, "vtt")[0] and "\nB: " in read_transcript(call_job, "srt")[0]
    # Its cost counts both channels: the model time of each, summed, at the instance price.
    spent = [line for line in worker.logged("channel transcribed") if line.get("job_id") == call_job.job_id]
    assert sorted(line["channel"] for line in spent) == [0, 1]
    done, model_seconds = finished[call_job.job_id], sum(line["model_seconds"] for line in spent)
    assert model_seconds > 0 and done.model_seconds == round(model_seconds, 3)
    assert done.cost_usd == round(model_seconds * get_settings().usd_per_model_second, 8)
    # Not a video: no rendition; the upload itself plays, and stays.
    status, link = get_audio(call_job.job_id, user=call_job.user_id)
    assert status == 200 and link["content_type"] == "audio/wav" and not done.rendition
    assert requests.get(link["url"], timeout=10).content == stereo.read_bytes()


def assert_played_as_rendition(job: Job, video: Path, tmp_path: Path, track: int) -> None:
    """docs/scaling.md, "Video: what is kept": the completed video job plays from an AAC .m4a of what the model
    heard (16 kHz mono, as long as the job), and the video itself is gone."""
    status, link = get_audio(job.job_id, user=job.user_id)
    assert status == 200 and link["content_type"] == "audio/mp4", link
    assert keys.rendition_key(job.user_id, job.job_id) in link["url"]
    played = tmp_path / f"{video.stem}.m4a"
    played.write_bytes(requests.get(link["url"], timeout=10).content)
    with av.open(str(played)) as container:
        (stream,) = container.streams
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("aac", 16000, 1)
        assert container.duration is not None and job.duration_seconds is not None
        assert container.duration / av.time_base == pytest.approx(job.duration_seconds, abs=0.1)
    heard, rendition = audio.load(video, 3600, track=track), audio.load(played, 3600)
    n = min(len(heard), len(rendition))
    assert np.corrcoef(heard[:n], rendition[:n])[0, 1] > 0.9  # the same sound, in time with the transcript
    s3 = aws.client("s3")
    assert not s3.list_objects_v2(Bucket=aws.stack_resources().audio_bucket.name, Prefix=job.audio_key).get("Contents")


def test_a_rendition_that_cannot_be_made_leaves_the_video_to_play(stack, tmp_path):
    """Encoding fails (here its PCM is gone): the job goes on unmarked and the video itself plays."""
    from types import SimpleNamespace

    from worker.transcription.uploads import keep_rendition

    store = aws.job_store()
    job = submit(media.video(tmp_path / "standup.mov", [audio.load(JFK, 3600)]))
    job = store.jobs.claim(job.job_id, "message-1")
    keep_rendition(
        SimpleNamespace(s3=aws.client("s3"), res=stack, store=store), job, [audio.Pcm(tmp_path / "gone", 1, 0)]
    )
    assert not store.jobs.get(job.job_id).rendition
    status, link = get_audio(job.job_id, user=job.user_id)
    assert status == 200 and link["content_type"] == "video/quicktime"
    assert requests.get(link["url"], timeout=10).content == (tmp_path / "standup.mov").read_bytes()


def _turn(turns: list[media.Turn], at: float) -> int | None:
    return next((t.channel for t in turns if t.start - 0.3 <= at <= t.end + 0.3), None)


def test_a_channel_past_the_chunk_threshold_is_split_at_pauses_and_joined(model_dir):
    """channels.py's long path, in this process with the real engine: each 25-second channel of the call is
    cut at pauses into pieces of about 8 s (threshold 10 s) and joined with continuous timestamps."""
    from types import SimpleNamespace

    from hark.domain.transcript import speaker_turns
    from worker.transcription.channels import transcribe_channels
    from worker.transcription.engine import DecodeOptions, Engine

    settings = Settings(model_dir=str(model_dir), chunk_threshold_seconds=10, chunk_target_seconds=8)
    call, turns = media.stereo_call(LIBRI, JFK)
    with tempfile.TemporaryDirectory() as tmp:
        pcms = audio.decode_channels(media.wav(Path(tmp) / "call.wav", call), Path(tmp) / "pcm", 3600)
        result = transcribe_channels(
            SimpleNamespace(engine=Engine(settings), settings=settings), pcms, DecodeOptions(language="en")
        )
    assert result.audio_seconds == round(2 * call.shape[1] / media.RATE, 3) and result.model_seconds > 0
    words = [w for s in result.transcript.segments for w in s.words]
    # The pieces keep their times: words fall in their channel's turns.
    assert words and sum(_turn(turns, (w.start + w.end) / 2) == w.channel for w in words) >= 0.9 * len(words)
    assert [speaker for speaker, _ in speaker_turns(result.transcript)] == ["A", "B", "A", "B"]
    for channel, person in ((0, LIBRI), (1, JFK)):
        said = "".join(w.word for w in words if w.channel == channel)
        assert word_error_rate(reference(person.name), said, "en") < 0.25, said
