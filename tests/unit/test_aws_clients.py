"""hark.domain.aws's clients as configured for AWS (no endpoint) and for the emulator, checked offline: a
presigned URL is signed locally, so the host it targets is visible without any network."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from hark.domain import aws
from hark.domain.api_schemas import presigned_get
from hark.domain.uploads import presigned_upload

BUCKET = "hark-audio-123456789012-eu-west-1"


@pytest.fixture
def settings_env(monkeypatch):
    """set(**HARK_* values) -> hark.domain.aws rebuilt on exactly these settings (and fake credentials)."""
    for name in ("HARK_AWS_ENDPOINT_URL", "HARK_REGION", "HARK_ACCOUNT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    def set_(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"HARK_{name.upper()}", value)
        aws.reset()

    yield set_
    aws.reset()


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "ap-southeast-4"])
def test_presigned_urls_use_the_regional_virtual_hosted_endpoint_in_aws(settings_env, region):
    settings_env(region=region)
    s3 = aws.client("s3")
    post = presigned_upload(s3, BUCKET, "uploads/u/j/a.wav", "audio/wav", 1024, 900)
    get = presigned_get(s3, BUCKET, "transcripts/u/j/transcript.txt", 900)
    expected_host = f"{BUCKET}.s3.{region}.amazonaws.com"
    assert urlsplit(post.url).netloc == expected_host
    assert urlsplit(get).netloc == expected_host
    assert urlsplit(get).path == "/transcripts/u/j/transcript.txt"  # virtual-hosted: no bucket in the path
    assert f"%2F{region}%2Fs3%2Faws4_request" in get  # signed for the bucket's own region


def test_presigned_urls_use_path_style_on_the_emulator(settings_env):
    settings_env(region="us-east-1", aws_endpoint_url="http://127.0.0.1:4566")
    s3 = aws.client("s3")
    get = presigned_get(s3, "hark-local-audio", "transcripts/u/j/t.txt", 60)
    assert get.startswith("http://127.0.0.1:4566/hark-local-audio/transcripts/u/j/t.txt?")
    post = presigned_upload(s3, "hark-local-audio", "uploads/u/j/a.wav", "audio/wav", 1024, 60)
    assert post.url == "http://127.0.0.1:4566/hark-local-audio"


# -- resource names: bucket names carry the account and region in AWS (hark.domain.resources.bucket_name) ---------
def test_bucket_names_in_aws_carry_account_and_region(settings_env):
    settings_env(stack="hark-acme", region="eu-west-1", account="123456789012")
    res = aws.stack_resources()
    assert res.audio_bucket.name == "hark-acme-audio-123456789012-eu-west-1"
    assert res.transcripts_bucket.name == "hark-acme-transcripts-123456789012-eu-west-1"
    assert res.jobs_table.name == "hark-acme-jobs"  # tables and queues are per account and region already


def test_an_operator_without_hark_account_gets_it_from_sts(settings_env):
    """The ops CLI runs with the operator's credentials and no HARK_ACCOUNT: one GetCallerIdentity."""
    from botocore.stub import Stubber

    settings_env(stack="hark-acme", region="eu-west-1")
    with Stubber(aws.client("sts")) as sts:
        sts.add_response(
            "get_caller_identity",
            {"Account": "210987654321", "Arn": "arn:aws:iam::210987654321:user/op", "UserId": "AIDEXAMPLE"},
        )
        assert aws.stack_resources().audio_bucket.name == "hark-acme-audio-210987654321-eu-west-1"
        sts.assert_no_pending_responses()


def test_the_emulator_names_buckets_after_the_stack_alone(settings_env):
    settings_env(stack="hark-local", aws_endpoint_url="http://127.0.0.1:4566", account="123456789012")
    assert aws.stack_resources().audio_bucket.name == "hark-local-audio"


@pytest.mark.parametrize("stack", ["a-stack-name-far-too-long-for-s3", "Hark", "hark_acme", ""])
def test_stack_names_that_cannot_prefix_a_bucket_are_refused(stack):
    """Bad input: a clear ValueError naming the rule, before any resource is named."""
    from hark.domain.resources import MAX_STACK_NAME, resources

    with pytest.raises(ValueError, match=f"at most {MAX_STACK_NAME} characters"):
        resources(stack)


def test_the_longest_stack_name_still_makes_valid_bucket_names():
    from hark.domain.resources import MAX_STACK_NAME, resources

    res = resources("s" * MAX_STACK_NAME, account="123456789012", region="ap-southeast-4")
    for bdef in res.buckets:
        assert 3 <= len(bdef.name) <= 63  # S3's bucket naming rules
