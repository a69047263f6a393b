"""Contains all the data models used in inputs/outputs"""

from .audio_link import AudioLink
from .chunk_progress import ChunkProgress
from .create_job_request import CreateJobRequest
from .create_job_request_notify_type_0_item import CreateJobRequestNotifyType0Item
from .create_job_request_task import CreateJobRequestTask
from .create_job_response import CreateJobResponse
from .error_detail import ErrorDetail
from .error_response import ErrorResponse
from .gateway_error import GatewayError
from .get_transcript_jobs_job_id_transcript_get_format import GetTranscriptJobsJobIdTranscriptGetFormat
from .job_list import JobList
from .job_status import JobStatus
from .job_view import JobView
from .job_view_notify_item import JobViewNotifyItem
from .job_view_task import JobViewTask
from .transcript_link import TranscriptLink
from .transcript_link_format import TranscriptLinkFormat
from .transcript_links import TranscriptLinks
from .upload_form import UploadForm
from .upload_form_fields import UploadFormFields
from .webhook_attempt import WebhookAttempt
from .webhook_secret import WebhookSecret
from .webhook_settings import WebhookSettings
from .webhook_view import WebhookView

__all__ = (
    "AudioLink",
    "ChunkProgress",
    "CreateJobRequest",
    "CreateJobRequestNotifyType0Item",
    "CreateJobRequestTask",
    "CreateJobResponse",
    "ErrorDetail",
    "ErrorResponse",
    "GatewayError",
    "GetTranscriptJobsJobIdTranscriptGetFormat",
    "JobList",
    "JobStatus",
    "JobView",
    "JobViewNotifyItem",
    "JobViewTask",
    "TranscriptLink",
    "TranscriptLinkFormat",
    "TranscriptLinks",
    "UploadForm",
    "UploadFormFields",
    "WebhookAttempt",
    "WebhookSecret",
    "WebhookSettings",
    "WebhookView",
)
