"""The client side: the Python SDK (`from hark.client import Hark`), the `hark` CLI, `hark smoke`,
the deploy check and the typed layer generated from docs/openapi.json (`api_client`).

Nothing deployed imports this package.
"""

from hark.client.sdk import (
    FORMATS,
    ApiError,
    AuthError,
    ConnectionFailed,
    DownloadFailed,
    Hark,
    HarkError,
    InvalidArgument,
    JobFailed,
    JobList,
    JobStatus,
    JobView,
    NotFound,
    NotReady,
    QuotaExceeded,
    ServerTimeout,
    TranscriptLink,
    UploadFailed,
    WaitTimeout,
)

__all__ = [
    "FORMATS",
    "ApiError",
    "AuthError",
    "ConnectionFailed",
    "DownloadFailed",
    "Hark",
    "HarkError",
    "InvalidArgument",
    "JobFailed",
    "JobList",
    "JobStatus",
    "JobView",
    "NotFound",
    "NotReady",
    "QuotaExceeded",
    "ServerTimeout",
    "TranscriptLink",
    "UploadFailed",
    "WaitTimeout",
]
