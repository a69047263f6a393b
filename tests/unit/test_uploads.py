"""The upload allowlist, size limits and the presigned POST policy (moto does not check policies,
so the limits S3 enforces are proven here, on the signed policy itself)."""

from __future__ import annotations

import re
from datetime import UTC

import boto3
import pytest
from botocore.config import Config

from hark.domain.keys import MAX_DISPLAY_NAME, MAX_FILENAME, safe_filename
from hark.domain.uploads import (
    ALLOWED_CONTENT_TYPES,
    ALLOWED_EXTENSIONS,
    UploadRefused,
    check_upload,
    decode_policy,
    presigned_upload,
)

GIB = 1024**3


@pytest.fixture
def s3():
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(signature_version="s3v4"),
    )


def test_policy_pins_size_type_key_and_time(s3):
    form = presigned_upload(s3, "bucket", "uploads/u/j/a.mp3", "audio/mpeg", 123_456, 900)
    policy = decode_policy(form.fields)
    # Exactly the declared size: S3 refuses a shorter or longer body at upload time.
    assert ["content-length-range", 123_456, 123_456] in policy["conditions"]
    assert {"Content-Type": "audio/mpeg"} in policy["conditions"]
    assert {"key": "uploads/u/j/a.mp3"} in policy["conditions"]
    assert {"bucket": "bucket"} in policy["conditions"]
    assert policy["expiration"] == form.expires_at
    assert form.fields["Content-Type"] == "audio/mpeg" and form.fields["key"] == "uploads/u/j/a.mp3"
    assert form.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and form.fields["x-amz-signature"]
    assert form.method == "POST"
    # No starts-with wildcard anywhere: the client cannot pick another key or type.
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in policy["conditions"])


def test_policy_expiry_follows_ttl(s3):
    from datetime import datetime

    form = presigned_upload(s3, "b", "k", "audio/wav", 10, 60)
    expires = datetime.strptime(form.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    left = (expires - datetime.now(UTC)).total_seconds()
    assert 50 < left <= 61


@pytest.mark.parametrize(
    "name, ctype, expected",
    [
        ("a.mp3", "audio/mpeg", ("a.mp3", "a.mp3", "audio/mpeg")),
        ("A.MP3", "AUDIO/MPEG", ("A.MP3", "A.MP3", "audio/mpeg")),
        ("rec.webm", "audio/webm; codecs=opus", ("rec.webm", "rec.webm", "audio/webm")),
        ("../../x/evil name.wav", "audio/wav", ("evil name.wav", "evil_name.wav", "audio/wav")),
        ("C:\\Users\\me\\voz ñ.m4a", "audio/x-m4a", ("voz ñ.m4a", "voz_n.m4a", "audio/x-m4a")),
        (
            "a" * 300 + ".flac",
            "audio/flac",
            ("a" * (MAX_DISPLAY_NAME - 5) + ".flac", "a" * 115 + ".flac", "audio/flac"),
        ),
        # Names in any script: kept as given for people; the key keeps the extension.
        ("会議.mp3", "audio/mpeg", ("会議.mp3", "audio.mp3", "audio/mpeg")),
        ("запись.MP3", "audio/mpeg", ("запись.MP3", "audio.MP3", "audio/mpeg")),
        ("تسجيل.wav", "audio/wav", ("تسجيل.wav", "audio.wav", "audio/wav")),
        ("Ελληνικά.flac", "audio/flac", ("Ελληνικά.flac", "audio.flac", "audio/flac")),
        ("Réunion 会議 2.m4a", "audio/mp4", ("Réunion 会議 2.m4a", "Reunion_2.m4a", "audio/mp4")),
        # Invisible characters go: a right-to-left override cannot disguise the name.
        ("evil\u202egpj.mp3", "audio/mpeg", ("evilgpj.mp3", "evilgpj.mp3", "audio/mpeg")),
        ("a\x00b\tc\u200b.mp3", "audio/mpeg", ("ab c.mp3", "ab_c.mp3", "audio/mpeg")),
        # NFD input ("e" + combining acute) is kept composed (NFC), as typed on another system.
        ("cafe\u0301.ogg", "audio/ogg", ("caf\u00e9.ogg", "cafe.ogg", "audio/ogg")),
    ],
)
def test_normalised(name, ctype, expected):
    checked = check_upload(name, ctype, 10, GIB)
    assert (checked.filename, checked.key_name, checked.content_type) == expected
    assert "/" not in checked.key_name and len(checked.key_name) <= MAX_FILENAME
    assert checked.key_name.isascii() and re.fullmatch(r"[A-Za-z0-9._-]+", checked.key_name)
    assert checked.key_name == safe_filename(name)  # the key upload_key() builds from the name


@pytest.mark.parametrize(
    "name, ctype, status, code",
    [
        ("a.txt", "audio/mpeg", 415, "unsupported_extension"),
        ("mp3", "audio/mpeg", 415, "unsupported_extension"),
        (".mp3", "audio/mpeg", 415, "unsupported_extension"),
        ("a.mp3/", "audio/mpeg", 415, "unsupported_extension"),
        ("会議", "audio/mpeg", 415, "unsupported_extension"),
        ("запись.мп3", "audio/mpeg", 415, "unsupported_extension"),
        ("\u202e", "audio/mpeg", 415, "unsupported_extension"),
        ("a.mp3", "", 415, "unsupported_media_type"),
        ("a.mp3", "audio/mpeg\r\nX-Evil: 1", 415, "unsupported_media_type"),
        ("a.mp3", "application/octet-stream", 415, "unsupported_media_type"),
    ],
)
def test_refused(name, ctype, status, code):
    with pytest.raises(UploadRefused) as info:
        check_upload(name, ctype, 10, GIB)
    assert (info.value.status, info.value.code) == (status, code)


def test_size_limits():
    assert check_upload("a.mp3", "audio/mpeg", GIB, GIB).size == GIB
    with pytest.raises(UploadRefused) as info:
        check_upload("a.mp3", "audio/mpeg", GIB + 1, GIB)
    assert info.value.status == 413 and "1 GiB" in info.value.message
    with pytest.raises(UploadRefused) as info:
        check_upload("a.mp3", "audio/mpeg", 0, GIB)
    assert info.value.status == 400


def test_messages_list_what_is_accepted():
    with pytest.raises(UploadRefused) as info:
        check_upload("a.doc", "audio/mpeg", 1, GIB)
    assert all(f".{e}" in info.value.message for e in ALLOWED_EXTENSIONS)
    with pytest.raises(UploadRefused) as info:
        check_upload("a.mp3", "text/plain", 1, GIB)
    assert all(t in info.value.message for t in ALLOWED_CONTENT_TYPES)


@pytest.mark.parametrize(
    "name, ending",
    [("会議", "(no extension)"), ("запись.мп3", ".мп3"), ("song.mp3.exe", ".exe"), (".mp3", "(no extension)")],
)
def test_the_refusal_names_the_ending_as_given(name, ending):
    with pytest.raises(UploadRefused) as info:
        check_upload(name, "audio/mpeg", 1, GIB)
    assert info.value.message.startswith(f"Files ending in {ending} are not accepted")
