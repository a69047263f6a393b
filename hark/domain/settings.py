"""Runtime settings, read from HARK_* environment variables (Lambda env, ECS task env, local stack).

One place for every tunable. Resource *names* come from `hark.domain.resources` by stack name; only the
endpoint and secrets-free knobs live here.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HARK_", extra="ignore")

    # Where the AWS resources live. `stack` prefixes every resource name (hark.domain.resources).
    stack: str = "hark"
    region: str = "us-east-1"
    # The AWS account id: bucket names carry it with the region (hark.domain.resources.bucket_name). The CDK app
    # sets it on every Lambda and task; unset in AWS (the ops CLI), it is looked up once (STS). Unused
    # on the emulator, whose buckets are named after the stack alone.
    account: str | None = None
    # Set only for the local emulator; None means the real AWS endpoints.
    aws_endpoint_url: str | None = None
    # Overrides for one service (fault injection: point SES at a dead port to simulate an outage).
    ses_endpoint_url: str | None = None
    # Tests only: append every AWS operation this process performs (and every URL it presigns) to this
    # file as JSON lines, attributed to the component that made it (hark.domain.aws; checked against the IAM
    # roles of the synthesised templates by tests/aws_calls.py, since the emulator enforces no IAM).
    record_aws_calls: str | None = None

    # Clerk (or the local dev issuer): the authorizer trusts exactly this issuer and these parties.
    issuer: str = "http://127.0.0.1:8000"
    jwks_url: str | None = None  # default: {issuer}/.well-known/jwks.json
    authorized_parties: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"])
    jwt_leeway_seconds: int = 30

    # Uploads.
    max_upload_bytes: int = 2 * GIB
    # Videos (hark.domain.uploads.VIDEO_CONTENT_TYPES) may be larger: an hour's meeting is 0.5-2 GB. Only their
    # audio is decoded, and it holds to max_audio_seconds like any recording (docs/api.md, "Video").
    max_video_upload_bytes: int = 5 * GIB
    # Over this size a client uploads in parts (S3 multipart, a presigned PUT per part: hark.domain.uploads),
    # each part retried on its own and the upload resumable; parts of this size (more for a file that would
    # need over S3's 10,000). A part is what a dropped connection costs again.
    multipart_threshold_bytes: int = 100 * 1024**2
    multipart_part_bytes: int = 16 * 1024**2
    upload_url_ttl_seconds: int = 15 * 60
    transcript_link_ttl_seconds: int = 15 * 60
    # GET /jobs/{id}/audio: the viewer plays the upload from a presigned GET valid this long (the player
    # fetches ranges while it plays; the viewer asks for a new link when one has expired).
    audio_link_ttl_seconds: int = 15 * 60
    max_unfinished_jobs: int = 100
    # Request bodies (POST /jobs): read only when at most this many bytes and this many levels deep,
    # checked before parsing (hark.api.json_body). A job's body is ~200 bytes, one level.
    max_body_bytes: int = 16 * 1024
    max_body_depth: int = 8

    # Notifications.
    email_sender: str = "transcripts@hark.local"
    # How long the links in an email work: the expiry is signed into each link (hark.domain.links).
    email_link_ttl_seconds: int = 24 * 3600
    web_url: str = "http://127.0.0.1:8000"
    # The API's base URL, for the links in emails ({api_url}/links/{token}); locally the gateway.
    api_url: str = "http://127.0.0.1:8000"
    # Following a link answers a redirect to a presigned S3 GET valid this long, minted at that moment.
    link_redirect_ttl_seconds: int = 300
    # Clerk's Backend API: where the notifier reads a user's email address when the token had none.
    clerk_api_url: str = "https://api.clerk.com"
    clerk_timeout_seconds: float = 10
    # Secrets Manager values (link key, Clerk key) are cached this long per process.
    secret_cache_seconds: int = 300
    outbox_dir: str | None = None  # local only: every email is also written here as .eml
    # Notification worker. SES errors back off by receive count: base * 2^(n-1), capped.
    notify_backoff_base_seconds: float = 10
    notify_backoff_max_seconds: int = 15 * 60
    # How long one sender holds a job's send right. Longer than the worst SES call (hark.domain.aws: 3 attempts
    # x (5 s connect + 20 s read) plus botocore's backoff, under 90 s), short enough that a notifier
    # killed mid-send delays the email by well under 2 minutes (the next delivery waits it out).
    notify_lease_seconds: int = 100
    notify_batch_size: int = 10  # messages per receive (1-10)
    email_preview_chars: int = 300

    # Webhooks (hark.domain.webhooks, worker/webhooks). Deployments call https receivers only; the local stack
    # allows http and loopback receivers (a test's own server), never link-local or private addresses.
    webhook_require_https: bool = True
    webhook_allow_loopback: bool = False
    # The whole of one delivery attempt (hark.domain.webhooks.Deadline): connect, TLS, send, the status line and
    # headers, a few KiB of body. A receiver that drips its answer is cut off here, and retried.
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    # Attempts at once (the worker's threads), and at most this many of them to one receiver (its origin):
    # as many more of its messages may wait one deadline for a turn, the rest go back to the queue for
    # one deadline. So a slow receiver holds at most 2 x webhook_attempts_per_receiver threads, and every
    # other receiver's deliveries go ahead (worker/webhooks/worker.py, ReceiverTurns).
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_attempts_per_receiver: int = Field(default=2, ge=1)
    # Visibility after the 1st, 2nd, ... failed attempt; 7 retries span about 22 hours. The webhook queue's
    # maxReceiveCount (hark.domain.resources.WEBHOOK_ATTEMPTS) is one more than this list is long.
    webhook_retry_delays_seconds: list[int] = Field(
        default_factory=lambda: [30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600]
    )
    # After POST /webhook-secret the old secret still signs (beside the new one) this long.
    webhook_secret_grace_seconds: int = 24 * 3600
    # The app's own 429 (too many unfinished jobs) says to retry after this long (Retry-After).
    quota_retry_after_seconds: int = 60
    # Requests one API key may make a minute (hark.domain.api_keys, a window per key and minute; 429 with
    # Retry-After beyond it). Session tokens have the stage's throttle only (hark.api.http_api).
    api_key_requests_per_minute: int = Field(default=600, ge=1)

    # Transcription worker.
    model_dir: str | None = None  # a CTranslate2 Whisper model folder
    model_name: str = "whisper-base"
    device: str = "auto"  # cpu | cuda | auto
    compute_type: str = "default"  # int8 on CPU, float16 on GPU when "default"
    cpu_threads: int = 0
    # Speaker labels (sherpa-onnx, docs/diarization.md; both chosen on bench/diarization.py). The
    # segmentation window (10 s) moves by this share of itself: 0.1 (pyannote's) is ~4x slower for about
    # the same DER; 0.5 blurred the joined files' speaker changes (confusion 9-13%).
    diarization_window_shift: float = Field(default=0.4, gt=0, le=1)
    # Clustering: two windows' voices closer than this (cosine distance) are one speaker, when the job
    # gives no speakers_expected. 0.4 found every count on the bench (issues 14 and 27); 0.3 over-counted,
    # 0.5 merged the real call's two people.
    diarization_threshold: float = Field(default=0.4, gt=0, lt=2)
    # After that clustering, a voice with less speech than this in all is folded into the voice it sounds
    # most like: the threshold splits scraps of ~1 s off people's turns (bench/diarization.py).
    diarization_fold_seconds: float = Field(default=2.0, ge=0)
    # Then each pause-to-pause piece of a turn goes to the voice it sounds most like (bench/diarization.py).
    diarization_reassign: bool = True
    batch_size: int = 8
    beam_size: int = 5
    max_audio_seconds: float = 4 * 3600
    # Quality checks (worker/transcription/quality.py): a segment past any of these is re-decoded (higher
    # temperatures, then without a forced language) and flagged in segments[].flags if it stays so.
    quality_compression_ratio: float = 2.4  # Whisper's own threshold: speech compresses ~1.2-2x, loops more
    quality_min_avg_logprob: float = -1.0  # average token log-probability below this: low confidence
    quality_no_speech_prob: float = 0.6  # with a low log-probability: probably no speech, text invented
    quality_max_repeats: int = 4  # an n-gram this many times in a row (8+ words) is a repetition loop
    quality_redecode: bool = True  # False: only flag, never re-decode
    # Language identification per speech window (mixed-language recordings): a window identified with
    # less than this probability takes the recording's dominant language instead.
    language_window_min_probability: float = 0.5
    # A switch to another language needs this much speech in a row identified as it; a shorter run
    # (a phrase that sounds Portuguese in Spanish speech) keeps the recording's main language.
    language_switch_min_seconds: float = 4.0
    # A language identified per speech window (mixed-language recordings), at one encoder pass per
    # window: milliseconds on a GPU, but on the CPU it took long recordings from 14.9x to 2.5x real time
    # (docs/benchmarks.md). None: on with CUDA, off on the CPU; False: one language per recording.
    language_per_window: bool | None = None
    chunk_threshold_seconds: float = 600
    # Throughput (worker/transcription/engine.py): messages a worker holds at once, each in its own thread
    # (download, decode, VAD, features) while the model decodes batches shared by all of them, and the
    # audio seconds inside the engine at once (memory: ~64 KB of samples per second; a bigger job runs alone).
    max_messages_in_flight: int = 12
    # Model replicas (CTranslate2 inter_threads), each running its own batch at once on its share of the
    # cores (HARK_CPU_THREADS or all, divided among them). 0: two on the CPU, one on a GPU. On the shared
    # 2-core machine two batches on one core each ran 1.3-1.7x faster than one batch on both, the engine's
    # short-file stream 1.26x; no gain beside another CPU-bound process (docs/benchmarks.md).
    model_replicas: int = 0
    max_audio_seconds_in_flight: float = 3600
    # Cost per job (its share of model time x this): the hourly price of the instance a worker runs on
    # (g4dn.xlarge on-demand, us-east-1, $0.526; hark.ops.scaling lists the pool) over the workers on one.
    instance_usd_per_hour: float = 0.526
    workers_per_instance: int = 1
    chunk_target_seconds: float = 300
    # Captions (srt, vtt; hark.domain.transcript.CaptionStyle): the stored files use these, GET /jobs/{id}/transcript
    # re-renders with a request's own characters per line and lines per cue. Set the same on the API and
    # the workers (the API serves the stored files when a request asks for these values).
    caption_chars_per_line: int = 42
    caption_lines_per_cue: int = 2
    caption_max_cue_seconds: float = 7.0
    # A silence this long is a good place to end a cue; three times it always ends one.
    caption_pause_seconds: float = 0.5
    # The live service (worker/live): requests transcribing at once (each holds its decoded audio: 64 KB per
    # second as float samples; more wait their turn), the longest recording one may send (a 25 MB file can
    # hold hours of Opus), and the port it listens on in its ECS task.
    live_max_requests: int = 4
    live_max_audio_seconds: float = 3600
    live_port: int = 8080
    # The live service's model replicas. One: a stream's final waits for one decode of its buffer (Whisper's
    # encoder pads every buffer to 30 s, so it costs the same whatever the length), and one replica decodes on
    # all the cores: on the shared 2-core CPU a single stream's median final lag 2.1 s against 2.9 s with two
    # (bench/live.py, docs/benchmarks.md); a GPU runs one anyway. HARK_MODEL_REPLICAS stays the batch workers'.
    live_model_replicas: int = 1
    # Web origins whose pages may call it across origins (CORS): in AWS the API's own CORS origins, since the
    # web page asks the live service's host for tickets; none locally, where it shares the page's origin.
    live_cors_origins: list[str] = Field(default_factory=list)
    # The balancer's target group the task is registered in (AWS: set by infra/hark_infra/live.py; empty
    # locally). When set, the task watches its own target there and ends its streams when it starts draining
    # (worker/live/target.py); ECS tells the task where it is (ECS_CONTAINER_METADATA_URI_V4, ECS's own name).
    live_target_group_arn: str = ""
    ecs_metadata_uri: str = Field(default="", validation_alias="ECS_CONTAINER_METADATA_URI_V4")
    # Visibility after the 1st, 2nd, 3rd failed receive (ChangeMessageVisibility); then the DLQ.
    retry_delays_seconds: list[int] = Field(default_factory=lambda: [300, 1500, 7500])

    # Both workers (worker/runtime.py). Long-poll wait of one receive.
    poll_wait_seconds: int = 20
    # How long a received message stays hidden; a heartbeat re-extends it every third of that while
    # work runs, so a killed worker's message is visible again within one lease (not the queue's 15 min).
    visibility_lease_seconds: int = 60
    # SIGTERM -> SIGKILL (ECS stopTimeout; infra/hark_infra/workers.py reads this default): the worker
    # finishes its message, or hands it back, a margin before this runs out. 120 s is Fargate's maximum.
    stop_timeout_seconds: float = 120

    @property
    def usd_per_model_second(self) -> float:
        """What one second of a worker's model time costs: the instance's hourly price shared by its workers."""
        return self.instance_usd_per_hour / max(1, self.workers_per_instance) / 3600

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"


@lru_cache
def get_settings() -> Settings:
    return Settings()
