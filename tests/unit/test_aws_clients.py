"""hark.aws's clients as configured for AWS (no endpoint) and for the emulator, checked offline: a
presigned URL is signed locally, so the host it targets is visible without any network."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from hark import aws
from hark.jobviews import presigned_get
from hark.uploads import presigned_upload

BUCKET = "hark-audio-123456789012-eu-west-1"


@pytest.fixture
def settings_env(monkeypatch):
    """set(**HARK_* values) -> hark.aws rebuilt on exactly these settings (and fake credentials)."""
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
