"""Steering on the real recordings, through the API and the transcription worker (issue 11, item 5): a
prompt that spells a name the model otherwise gets wrong, and Spanish speech translated to English.

Each job is created by the API Lambda (prompt, task and language as a client sends them), uploaded with
its presigned form, and transcribed by `python -m worker.transcription` from the S3 event."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from hark.domain.jobs import JobStatus
from hark.evaluation.wer import word_error_rate, words
from tests.conftest import SHARED_SPEECH
from tests.integration.test_api import new_job
from tests.integration.test_transcription_worker import read_transcript, reference, wait_finished

# Names Whisper base misspells in these recordings without a prompt (measured: "buen worth", "Carpaneo").
NAMES = {"es_mls_13697_11991_000000.opus": "Wentworth", "es_fleurs_004.ogg": "Carpanedo"}
# English renderings written by hand from the FLEURS Spanish references (es_fleurs_002.txt: "fue tanta la
# cantidad de gente que se concentró que no todos pudieron acceder al funeral en la plaza de san pedro";
# es_picovoice_test_es.txt: "Las arenas son blanquecinas de grano medio y tiene muy poca asistencia."), with
# the words any faithful translation keeps.
TRANSLATIONS = {
    "es_fleurs_002.ogg": (
        "So many people gathered that not everyone could get into the funeral in Saint Peter's Square.",
        {"people", "everyone", "funeral"},
    ),
    "es_picovoice_test_es.wav": (
        "The sands are whitish, of medium grain, and have very little assistance.",
        {"medium", "grain", "little"},
    ),
}


def api_job(path: Path, **steering) -> str:
    """Create a job through the API Lambda and upload the file with its form: the job id."""
    created = new_job(filename=path.name, content_type="audio/ogg", size=path.stat().st_size, **steering)
    upload = created["upload"]
    with open(path, "rb") as f:
        sent = requests.post(upload["url"], data=upload["fields"], files={"file": (path.name, f)}, timeout=60)
    assert sent.status_code in (200, 204), sent.text
    return created["job"]["job_id"]


def transcript(job) -> tuple[str, dict]:
    return read_transcript(job, "txt")[0], json.loads(read_transcript(job, "json")[0])


def test_a_prompt_spells_the_names_and_translate_gives_english(stack, workers):
    workers()
    plain = {name: api_job(SHARED_SPEECH / name) for name in NAMES}
    prompted = {name: api_job(SHARED_SPEECH / name, prompt=f"{spelling}.") for name, spelling in NAMES.items()}
    # Translated with the language detected, and with it named as people write it.
    translated = {
        "es_fleurs_002.ogg": api_job(SHARED_SPEECH / "es_fleurs_002.ogg", task="translate"),
        "es_picovoice_test_es.wav": api_job(
            SHARED_SPEECH / "es_picovoice_test_es.wav", task="translate", language="spanish"
        ),
    }
    finished = wait_finished([*plain.values(), *prompted.values(), *translated.values()])
    assert all(j.status == JobStatus.COMPLETED for j in finished.values()), [j.error for j in finished.values()]

    for name, spelling in NAMES.items():
        without, _ = transcript(finished[plain[name]])
        with_prompt, data = transcript(finished[prompted[name]])
        print(f"{name}: without a prompt {without!r}\n  with {spelling!r}: {with_prompt!r}")
        assert spelling.lower() not in words(without, "es")  # the model alone gets the name wrong ...
        assert spelling.lower() in words(with_prompt, "es")  # ... the prompt spells it
        assert spelling in with_prompt  # as written in the prompt, capital included
        ref = reference(name)
        assert word_error_rate(ref, with_prompt, "es") < word_error_rate(ref, without, "es")
        assert data["language"] == "es" and finished[prompted[name]].detected_language == "es"

    for name, (english, key_words) in TRANSLATIONS.items():
        job = finished[translated[name]]
        text, data = transcript(job)
        heard = set(words(text, "en"))
        print(f"{name} translated: {text!r}")
        assert key_words <= heard, (key_words - heard, text)
        # English, not Spanish: few of its words are the Spanish reference's (names and cognates at most),
        # and it is closer to the English rendering than to the Spanish.
        spanish = set(words(reference(name), "es"))
        assert len(heard & spanish) <= 0.25 * len(heard), heard & spanish
        assert word_error_rate(english, text, "en") < word_error_rate(reference(name), text, "es")
        # The transcript's language is the one spoken (what was identified in the audio), not the text's.
        assert data["language"] == "es" and {s["language"] for s in data["segments"]} == {"es"}
        assert job.detected_language == "es" and job.task == "translate"


def test_chunks_of_a_long_recording_are_steered_like_the_whole(stack, workers):
    """Each chunk is decoded by whichever worker takes it: the prompt and task come from the job's record."""
    clip = SHARED_SPEECH / "es_mls_13697_11991_000000.opus"  # 14.9 s: chunks of about 6 s
    workers(HARK_CHUNK_THRESHOLD_SECONDS="6", HARK_CHUNK_TARGET_SECONDS="6")
    job_id = api_job(clip, prompt="Wentworth.", task="translate")
    job = wait_finished([job_id])[job_id]
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.chunks_total and job.chunks_total >= 2
    text, data = transcript(job)
    print(f"{job.chunks_total} chunks, translated: {text!r}")
    heard = set(words(text, "en"))
    assert "wentworth" in heard  # the prompt reached the chunk that says it
    # English (the translate task reached every chunk): few words of the Spanish reference remain.
    spanish = set(words(reference(clip.name), "es"))
    assert len(heard & spanish) <= 0.25 * len(heard), heard & spanish
    assert data["language"] == "es"
