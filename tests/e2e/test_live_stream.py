"""The live WebSocket (issue 24) end to end: `python -m worker.live` with the real model, verifying the dev
issuer's tokens of the running local stack, driven by a real WebSocket client (the websockets package) that
streams a real recording in real time, 100 ms a frame, as a microphone would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import requests

from hark.client.live import Heard, paced, pcm, send_paced, session
from hark.domain.api_keys import RATE_WINDOW_SECONDS
from hark.domain.wer import word_error_rate
from hark.local.emulator import LOCAL_CREDENTIALS, free_port
from hark.local.stack import local_env
from tests.conftest import SHARED_SPEECH
from tests.e2e.conftest import _clean_env
from tests.json_server import JsonServer
from tests.workers import LiveProcess

pytestmark = pytest.mark.e2e

CLIP = SHARED_SPEECH / "en_jfk.flac"  # 11 s, three phrases with pauses between them


def start_service(stack, model_dir: Path, log: Path, port: int | None = None, **settings: str) -> LiveProcess:
    """The live service as `hark up` configures its components (the stack's dev issuer, its emulator and API
    keys table), recording its AWS calls for the session's IAM check, with `settings` on top."""
    env = {
        **_clean_env(),
        **local_env(int(stack.url.rsplit(":", 1)[1]), stack.emulator_port, stack.home, model_dir),
        "HARK_RECORD_AWS_CALLS": os.environ.get("HARK_RECORD_AWS_CALLS", ""),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    return LiveProcess(env, log, port=port)


@pytest.fixture(scope="module")
def live_service(live_stack) -> SimpleNamespace:
    """The live WebSocket where `hark up` serves it: on the API's own port (hark/local/front.py sends /v1/* to
    the live app), as a browser on the web page reaches it."""
    assert live_stack.url.startswith("http://")
    return SimpleNamespace(url="ws://" + live_stack.url.removeprefix("http://"))


def bearer(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token('live@example.com')}"}


def test_a_recording_streamed_in_real_time_gets_partials_then_timed_finals_then_done(live_stack, live_service):
    heard = asyncio.run(
        session(f"{live_service.url}/v1/live?sample_rate=16000", bearer(live_stack), paced(pcm(CLIP, 16000), 16000))
    )
    assert heard.close_code == 1000, heard.messages
    kinds = [m["type"] for m in heard.messages]
    assert kinds[-1] == "done" and "error" not in kinds
    assert "partial" in kinds[: kinds.index("final")], kinds  # the text shows before it is final
    finals = heard.of("final")
    previous_end = 0.0
    for final in finals:
        words = final["words"]
        assert words and final["language"] == "en"
        assert (final["start"], final["end"]) == (words[0]["start"], words[-1]["end"])
        assert final["text"] == "".join(w["word"] for w in words).strip()
        for word in words:
            assert previous_end - 0.5 <= word["start"] <= word["end"] <= 11.5  # stream times, in order, in the clip
            assert 0 < word["probability"] <= 1
            previous_end = word["end"]
    done = heard.of("done")[0]
    assert done["text"] == " ".join(f["text"] for f in finals)
    reference = (SHARED_SPEECH / "en_jfk.txt").read_text()
    assert word_error_rate(reference, done["text"], "en") <= 0.25, done["text"]


def test_without_a_valid_credential_the_stream_is_refused(live_service):
    for headers, query in [({}, ""), ({"Authorization": "Bearer not.a.jwt"}, ""), ({}, "&ticket=made-up")]:
        heard = asyncio.run(session(f"{live_service.url}/v1/live?sample_rate=16000{query}", headers))
        assert [m["type"] for m in heard.messages] == ["error"] and heard.close_code == 4401, (headers, query)


def test_a_ticket_issued_by_one_task_opens_one_stream_on_another(live_stack, live_service, model_dir, tmp_path):
    """Two live tasks on one stack, as behind the load balancer, which routes the ticket's request and the
    WebSocket independently: `hark up`'s live service issues the ticket, a second `python -m worker.live` opens
    its stream with it (stopped at once: `done`, then 1000), and a second use is refused with 4401 on either."""
    other = start_service(live_stack, model_dir, tmp_path / "live.log")
    try:
        http = live_service.url.replace("ws://", "http://")
        answer = requests.post(f"{http}/v1/live/tickets", headers=bearer(live_stack), timeout=10)
        assert answer.status_code == 201 and answer.json()["expires_in"] == 30, answer.text
        query = f"/v1/live?sample_rate=16000&ticket={answer.json()['ticket']}"
        stop = paced(b"", 16000)  # an accepted stream ends at once
        opened = asyncio.run(session(f"{other.url}{query}", send=stop))
        again = {url: asyncio.run(session(f"{url}{query}", send=stop)) for url in (other.url, live_service.url)}
    finally:
        other.stop()
    assert opened.close_code == 1000 and [m["type"] for m in opened.messages] == ["done"], opened.messages
    for url, heard in again.items():
        assert heard.close_code == 4401 and [m["type"] for m in heard.messages] == ["error"], url


@pytest.mark.parametrize(
    ("frame", "code"),
    [(b"\x01\x02\x03", 1007), ("hello", 1003), (json.dumps({"type": "pause"}), 1003)],
)
def test_a_bad_frame_gets_an_error_and_its_close_code(live_stack, live_service, frame, code):
    async def send(ws, heard):
        await ws.send(frame)

    heard = asyncio.run(session(f"{live_service.url}/v1/live?sample_rate=16000", bearer(live_stack), send))
    assert heard.close_code == code and heard.messages[-1]["type"] == "error" and heard.messages[-1]["message"]


def test_on_scale_in_a_stream_gets_its_finals_and_1012_to_reconnect(live_stack, model_dir, tmp_path):
    """SIGTERM (ECS stopping the task): the audio sent so far is finalised, then the close says reconnect.
    Streamed at 48 kHz, so the resampler is on the path too."""
    service = start_service(live_stack, model_dir, tmp_path / "live.log")
    audio = pcm(CLIP, 48000)[: 48000 * 2 * 4]  # "And so my fellow Americans", and a pause

    async def send(ws, heard: Heard) -> None:
        await send_paced(ws, audio, 48000, heard)
        while not heard.messages:  # the service is transcribing this stream
            await asyncio.sleep(0.05)
        service.process.send_signal(signal.SIGTERM)

    try:
        heard = asyncio.run(session(f"{service.url}/v1/live?sample_rate=48000", bearer(live_stack), send))
        # uvicorn re-raises the SIGTERM it handled once it has shut down: the exit ECS expects of a stop
        assert service.process.wait() == -signal.SIGTERM
    finally:
        service.stop()
    assert heard.close_code == 1012 and heard.reconnect, heard.messages  # the client says: reconnect
    assert heard.messages[-1]["type"] == "error"
    said = " ".join(m["text"] for m in heard.of("final")).lower()
    assert "fellow americans" in said, heard.messages


# What the ECS task metadata endpoint v4 answers at `${ECS_CONTAINER_METADATA_URI_V4}/task` for a task in the
# awsvpc network mode on EC2: the shape of the AWS documentation's "Example task metadata response" (Amazon
# ECS task metadata v4 examples), its pause container first, then the task's own; both on the task's one
# network interface, whose address is the task's target id in an IP target group.
TASK_IP = "10.0.2.106"
AWSVPC = {
    "NetworkMode": "awsvpc",
    "IPv4Addresses": [TASK_IP],
    "AttachmentIndex": 0,
    "MACAddress": "0e:9e:32:c7:48:85",
    "IPv4SubnetCIDRBlock": "10.0.2.0/24",
    "PrivateDNSName": "ip-10-0-2-106.us-west-2.compute.internal",
    "SubnetGatewayIpv4Address": "10.0.2.1/24",
}
TASK_METADATA = {
    "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
    "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c",
    "Family": "hark-live",
    "ServiceName": "hark-live",
    "Revision": "26",
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "AvailabilityZone": "us-west-2d",
    "VPCID": "vpc-1234567890abcdef0",
    "LaunchType": "EC2",
    "Containers": [
        {
            "DockerId": "598cba581fe3f939459eaba1e071d5c93bb2c49b7d1ba7db6bb19deeb70d8e38",
            "Name": "~internal~ecs~pause",
            "DockerName": "ecs-hark-live-26-internalecspause-e292d586b6f9dade4a00",
            "Image": "amazon/amazon-ecs-pause:0.1.0",
            "DesiredStatus": "RESOURCES_PROVISIONED",
            "KnownStatus": "RESOURCES_PROVISIONED",
            "Type": "CNI_PAUSE",
            "Networks": [AWSVPC],
        },
        {
            "DockerId": "ee08638adaaf009d78c248913f629e38299471d45fe7dc944d1039077e3424ca",
            "Name": "live",
            "DockerName": "ecs-hark-live-26-live-a0e0d0a9ec9fd9ce5400",
            "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/hark-transcription:latest",
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Type": "NORMAL",
            "Networks": [AWSVPC],
        },
    ],
}


@contextlib.contextmanager
def task_metadata_endpoint() -> Iterator[str]:
    """A local stand-in for the ECS agent's metadata endpoint; yields what ECS_CONTAINER_METADATA_URI_V4 holds."""
    server = JsonServer(lambda path: (200, TASK_METADATA) if path == "/v4/container/task" else (404, {}))
    try:
        yield f"{server.origin}/v4/container"
    finally:
        server.close()


def test_when_its_target_drains_a_stream_gets_its_finals_and_1012_to_reconnect(live_stack, model_dir, tmp_path):
    """Scale-in behind the balancer: ECS deregisters the task's target and the balancer drains it, breaking its
    connections when the delay ends; the service sees its own target leave (worker/live/target.py) and ends the
    stream first: the audio sent so far is finalised, then 1012, and a new stream is refused with 1012 too. The
    target group is the stack's emulator's (moto), an IP target group as the CDK app makes."""
    elbv2, ec2 = (
        boto3.client(
            name,
            endpoint_url=f"http://127.0.0.1:{live_stack.emulator_port}",
            region_name="us-east-1",
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        for name in ("elbv2", "ec2")
    )
    port = free_port()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    (group,) = elbv2.create_target_group(Name=f"live-{port}", Protocol="HTTP", Port=port, VpcId=vpc, TargetType="ip")[
        "TargetGroups"
    ]
    target = {"Id": TASK_IP, "Port": port}
    elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[target])
    audio = pcm(CLIP, 16000)[: 16000 * 2 * 4]  # "And so my fellow Americans", and a pause

    async def send(ws, heard: Heard) -> None:
        await send_paced(ws, audio, 16000, heard)
        while not heard.messages:  # the service is transcribing this stream
            await asyncio.sleep(0.05)
        elbv2.deregister_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[target])  # ECS stops the task

    with task_metadata_endpoint() as metadata:
        service = start_service(
            live_stack,
            model_dir,
            tmp_path / "live.log",
            port=port,
            HARK_LIVE_TARGET_GROUP_ARN=group["TargetGroupArn"],
            ECS_CONTAINER_METADATA_URI_V4=metadata,
        )
        try:
            heard = asyncio.run(session(f"{service.url}/v1/live?sample_rate=16000", bearer(live_stack), send))
            later = asyncio.run(session(f"{service.url}/v1/live?sample_rate=16000", bearer(live_stack)))
            assert service.process.poll() is None  # sync requests go on until SIGTERM
        finally:
            service.stop()
    assert heard.close_code == 1012 and heard.reconnect, heard.messages
    *finals, last = heard.messages
    assert last["type"] == "error" and "reconnect" in last["message"]
    said = " ".join(m["text"] for m in finals if m["type"] == "final").lower()
    assert "fellow americans" in said, heard.messages
    assert later.reconnect and [m["type"] for m in later.messages] == ["error"]


def test_an_api_key_past_its_requests_a_minute_gets_429_for_a_ticket_and_1013_on_the_websocket(
    live_stack, model_dir, tmp_path
):
    """As the API answers such a key (hark.api.control.admit): a ticket is the API's 429 with Retry-After, and
    a stream is an error frame with `retry_after`, then 1013 (try again later)."""
    token = live_stack.token("limited@example.com")
    service = start_service(live_stack, model_dir, tmp_path / "live.log", HARK_API_KEY_REQUESTS_PER_MINUTE="1")
    tickets = service.url.replace("ws://", "http://") + "/v1/live/tickets"
    try:
        for _ in range(3):  # the three requests must count in one window: a new key tries again if one ended
            headers = {"Authorization": f"Bearer {live_stack.api_key(token, 'one a minute')}"}
            window = time.time() // RATE_WINDOW_SECONDS
            first = requests.post(tickets, headers=headers, timeout=10)
            refused = requests.post(tickets, headers=headers, timeout=10)
            heard = asyncio.run(session(f"{service.url}/v1/live?sample_rate=16000", headers))
            models = requests.get(tickets.replace("/v1/live/tickets", "/v1/models"), headers=headers, timeout=10)
            if time.time() // RATE_WINDOW_SECONDS == window:
                break
    finally:
        service.stop()
    assert first.status_code == 201, first.text  # the key's one request of this minute
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited", refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= RATE_WINDOW_SECONDS
    assert (refused.headers["RateLimit-Limit"], refused.headers["RateLimit-Remaining"]) == ("1", "0")
    assert heard.close_code == 1013 and [m["type"] for m in heard.messages] == ["error"], heard.messages
    assert 1 <= heard.messages[0]["retry_after"] <= RATE_WINDOW_SECONDS
    # the OpenAI-compatible routes: OpenAI's error shape, with the API's Retry-After that the OpenAI SDK honours
    assert models.status_code == 429 and models.json()["error"]["code"] == "rate_limit_exceeded", models.text
    assert 1 <= int(models.headers["Retry-After"]) <= RATE_WINDOW_SECONDS
