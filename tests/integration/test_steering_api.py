"""Steering in the API (issue 11, item 5): a job's prompt, task and language by name, stored on the job and
shown back; bad input is a 400 that names the field and says why, and creates nothing."""

from __future__ import annotations

import pytest

from hark.domain import aws
from hark.domain.api_schemas import PROMPT_MAX_CHARS
from hark.domain.languages import NAMES
from tests.integration.test_api import ALICE, GOOD_BODY, assert_error, assert_nothing_left, call, new_job


def stored(job_id: str):
    job = aws.job_store().get_owned(job_id, ALICE)
    assert job is not None
    return job


def test_prompt_and_translate_are_stored_and_shown(stack):
    prompt = "Quilter, Kubernetes, Nguyen"
    created = new_job(prompt=prompt, task="translate", language="Spanish")
    view = created["job"]
    assert (view["prompt"], view["task"], view["language"]) == (prompt, "translate", "es")
    job = stored(view["job_id"])
    assert (job.prompt, job.task, job.language) == (prompt, "translate", "es")
    status, again = call("GET", f"/jobs/{view['job_id']}")
    assert status == 200 and (again["prompt"], again["task"]) == (prompt, "translate")


def test_defaults_transcribe_without_prompt(stack):
    view = new_job()["job"]
    assert (view["prompt"], view["task"], view["language"]) == (None, "transcribe", "auto")
    job = stored(view["job_id"])
    assert (job.prompt, job.task) == (None, "transcribe")


@pytest.mark.parametrize("given", ["es", "Spanish", "spanish", "SPANISH", "español", "Castilian"])
def test_language_names_are_stored_as_the_code(stack, given):
    assert new_job(language=given)["job"]["language"] == "es"


def test_every_whisper_name_is_accepted(stack):
    # One job per name would be 100 jobs against the quota: the schema alone (same validator) for each.
    from hark.domain.api_schemas import CreateJobRequest

    for code, name in NAMES.items():
        assert CreateJobRequest.model_validate({**GOOD_BODY, "language": name.title()}).language == code


def test_a_prompt_at_the_limit_is_kept_whole(stack):
    prompt = ("Nguyen " * PROMPT_MAX_CHARS)[:PROMPT_MAX_CHARS]
    assert new_job(prompt=prompt)["job"]["prompt"] == prompt.strip()


def test_a_blank_prompt_is_no_prompt(stack):
    assert new_job(prompt="   ")["job"]["prompt"] is None


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("prompt", "x" * (PROMPT_MAX_CHARS + 1), f"at most {PROMPT_MAX_CHARS} characters"),
        ("prompt", 42, "valid string"),
        ("language", "Klingon", "Unknown language 'Klingon'"),
        ("language", "x" * 65, "at most 64 characters"),
        ("task", "summarise", "'transcribe' or 'translate'"),
        ("task", "TRANSLATE", "'transcribe' or 'translate'"),
    ],
)
def test_bad_steering_is_400_with_the_reason_and_creates_nothing(stack, field, value, says):
    err = assert_error(call("POST", "/jobs", body={**GOOD_BODY, field: value}), 400, "validation_error")
    assert err["message"].startswith(f"{field}: ") and says in err["message"], err
    assert_nothing_left(stack)
