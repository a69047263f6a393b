"""Least privilege: each role reaches only its own resources."""

from __future__ import annotations

import pytest

from hark.domain.resources import CHUNKS_PREFIX, PARTS_PREFIX, RENDITIONS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX

from .conftest import TEST_CONTEXT, grants, role_statements, template_resources

RES = template_resources()
AUDIO = f"arn:${{AWS::Partition}}:s3:::{RES.audio_bucket.name}"
TRANSCRIPTS = f"arn:${{AWS::Partition}}:s3:::{RES.transcripts_bucket.name}"


def _s3(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, r) for a, r in pairs if a.startswith("s3:")}


@pytest.fixture(scope="module")
def api(synth):
    return grants(role_statements(synth.template("Api"), "ApiFunctionRole"))


@pytest.fixture(scope="module")
def authorizer(synth):
    return grants(role_statements(synth.template("Api"), "AuthorizerFunctionRole"))


@pytest.fixture(scope="module")
def transcription(synth):
    return grants(role_statements(synth.template("Workers"), "TranscriptionTaskRole"))


@pytest.fixture(scope="module")
def notification(synth):
    return grants(role_statements(synth.template("Workers"), "NotificationTaskRole"))


def test_no_role_uses_service_wildcards(api, authorizer, transcription, notification):
    for pairs in (api, authorizer, transcription, notification):
        assert not [a for a, _ in pairs if a.endswith(":*") or a == "*"]
        assert {r for a, r in pairs if r == "*"} <= {"*"} and all(a.startswith("xray:") for a, r in pairs if r == "*")


def test_api_reads_only_uploads_of_the_audio(api):
    # The viewer's playback link (GET /jobs/{id}/audio) presigns a GET of the upload or a video's rendition;
    # nothing else of the audio bucket (chunks/) is readable.
    reads = [r for a, r in api if a in ("s3:GetObject", "s3:GetObject*", "s3:*") and r.startswith(AUDIO)]
    assert sorted(reads) == [f"{AUDIO}/{RENDITIONS_PREFIX}*", f"{AUDIO}/{UPLOADS_PREFIX}*"]
    assert _s3(api) == {
        ("s3:PutObject", f"{AUDIO}/uploads/*"),  # presigned uploads only
        ("s3:ListMultipartUploadParts", f"{AUDIO}/uploads/*"),  # resuming an upload in parts
        ("s3:AbortMultipartUpload", f"{AUDIO}/uploads/*"),  # DELETE /jobs/{id}/multipart
        ("s3:GetObject", f"{AUDIO}/uploads/*"),  # presigned playback links
        ("s3:GetObject", f"{AUDIO}/renditions/*"),  # ... of a video's audio rendition
        ("s3:GetObject", f"{TRANSCRIPTS}/transcripts/*"),  # presigned transcript links
        ("s3:PutObject", f"{TRANSCRIPTS}/transcripts/*/captions/*"),  # captions in a requested style only
        ("s3:PutObject", f"{TRANSCRIPTS}/transcripts/*/revisions/*"),  # a person's corrections, never the model's
        ("s3:DeleteObject", f"{AUDIO}/uploads/*"),
        ("s3:DeleteObject", f"{AUDIO}/chunks/*"),
        ("s3:DeleteObject", f"{AUDIO}/renditions/*"),
        ("s3:DeleteObject", f"{TRANSCRIPTS}/transcripts/*"),
        ("s3:DeleteObject", f"{TRANSCRIPTS}/parts/*"),
        ("s3:ListBucket", AUDIO),
        ("s3:ListBucket", TRANSCRIPTS),  # DELETE lists each job prefix
    }
    assert not [a for a, _ in api if a.startswith(("sqs:", "ses:"))]


def test_api_lists_only_below_the_job_prefixes(synth):
    """DELETE lists the job's keys (ListObjectsV2): ListBucket only with an s3:prefix under a job prefix."""
    statements = [
        s for s in role_statements(synth.template("Api"), "ApiFunctionRole") if "s3:ListBucket" in s["Action"]
    ]
    prefixes = {p for s in statements for p in s["Condition"]["StringLike"]["s3:prefix"]}
    assert prefixes == {
        f"{p}*" for p in (UPLOADS_PREFIX, CHUNKS_PREFIX, RENDITIONS_PREFIX, TRANSCRIPTS_PREFIX, PARTS_PREFIX)
    }
    assert all(set(s["Condition"]) == {"StringLike"} for s in statements)


def test_api_reaches_its_tables_and_their_indexes_not_the_live_tickets(api):
    tables = {r.rsplit(":table/", 1)[1] for a, r in api if a == "dynamodb:Query"}
    mine = RES.api_tables
    assert tables == {t.name for t in mine} | {f"{t.name}/index/{i.name}" for t in mine for i in t.indexes}
    assert not [r for _, r in api if RES.live_tickets_table.name in r]  # the live service's alone
    assert "dynamodb:Scan" not in {a for a, _ in api}


def test_authorizer_reads_the_api_keys_table_and_no_other_data(authorizer):
    # hark.api.auth.identify: one GetItem by the key's id, last_used_at at most once a minute (UpdateItem).
    keys_table = (
        f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{RES.api_keys_table.name}"
    )
    data = {(a, r) for a, r in authorizer if not a.startswith(("logs:", "xray:"))}
    assert {a for a, _ in data} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}, data
    assert {r for _, r in data} == {keys_table}, data


def test_transcription_worker_cannot_send_email(transcription):
    assert not [a for a, _ in transcription if a.startswith("ses:")]
    assert _s3(transcription) == {
        ("s3:GetObject", f"{AUDIO}/uploads/*"),
        ("s3:GetObject", f"{AUDIO}/chunks/*"),
        ("s3:PutObject", f"{AUDIO}/chunks/*"),
        ("s3:PutObject", f"{AUDIO}/renditions/*"),  # a video's audio rendition
        ("s3:DeleteObject", f"{AUDIO}/renditions/*"),  # ... of a job deleted while it ran
        ("s3:GetObject", f"{TRANSCRIPTS}/transcripts/*"),
        ("s3:PutObject", f"{TRANSCRIPTS}/transcripts/*"),
        ("s3:GetObject", f"{TRANSCRIPTS}/parts/*"),
        ("s3:PutObject", f"{TRANSCRIPTS}/parts/*"),
        ("s3:DeleteObject", f"{TRANSCRIPTS}/transcripts/*"),  # a job deleted while it ran
        ("s3:DeleteObject", f"{AUDIO}/uploads/*"),  # an orphan upload (hark.domain.arrivals), a completed video
        ("s3:ListBucket", AUDIO),
        ("s3:ListBucket", TRANSCRIPTS),  # HeadObject of a missing key: 404, not 403
    }
    sqs = {(a, r.rsplit(":", 1)[1]) for a, r in transcription if a.startswith("sqs:")}
    assert {
        ("sqs:ReceiveMessage", RES.transcribe_queue.name),
        ("sqs:DeleteMessage", RES.transcribe_queue.name),
        ("sqs:ChangeMessageVisibility", RES.transcribe_queue.name),
        ("sqs:SendMessage", RES.transcribe_queue.name),
        ("sqs:SendMessage", RES.notify_queue.name),
    } <= sqs
    assert ("sqs:ReceiveMessage", RES.notify_queue.name) not in sqs
    assert {r.rsplit(":table/", 1)[1].split("/")[0] for a, r in transcription if a.startswith("dynamodb:")} == {
        RES.jobs_table.name
    }


def test_notifier_cannot_write_transcripts(notification, synth):
    assert _s3(notification) == {
        ("s3:GetObject", f"{TRANSCRIPTS}/transcripts/*"),
        ("s3:ListBucket", TRANSCRIPTS),
    }  # a deleted transcript answers 404
    assert not [a for a, _ in notification if a in ("s3:PutObject", "s3:DeleteObject")]
    sqs = {(a, r.rsplit(":", 1)[1]) for a, r in notification if a.startswith("sqs:")}
    assert {q for _, q in sqs} == {RES.notify_queue.name}
    assert ("sqs:SendMessage", RES.notify_queue.name) not in sqs
    ddb = {a for a, _ in notification if a.startswith("dynamodb:")}
    assert "dynamodb:UpdateItem" in ddb and not ddb & {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    ses = [
        s for s in role_statements(synth.template("Workers"), "NotificationTaskRole") if "ses:SendEmail" in s["Action"]
    ]
    (statement,) = ses
    assert sorted(statement["Action"]) == ["ses:SendEmail", "ses:SendRawEmail"]
    assert statement["Resource"]["Fn::Join"][1][-1].endswith(f":identity/{TEST_CONTEXT['hark:emailSender']}")
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": TEST_CONTEXT["hark:emailSender"]}}


def test_tasks_cannot_reach_instance_credentials(synth):
    from .conftest import one

    data = one(synth.template("Workers"), "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
