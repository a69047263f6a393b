"""Contains all the data models used in inputs/outputs"""

from .api_key_created import ApiKeyCreated
from .api_key_list import ApiKeyList
from .api_key_view import ApiKeyView
from .audio_link import AudioLink
from .chunk_progress import ChunkProgress
from .correct_transcript_request import CorrectTranscriptRequest
from .correct_transcript_request_speaker_names import CorrectTranscriptRequestSpeakerNames
from .corrections import Corrections
from .create_api_key_request import CreateApiKeyRequest
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
from .multipart_upload import MultipartUpload
from .part_url import PartUrl
from .part_urls import PartUrls
from .part_urls_request import PartUrlsRequest
from .segment_text import SegmentText
from .transcript_link import TranscriptLink
from .transcript_link_format import TranscriptLinkFormat
from .transcript_links import TranscriptLinks
from .transcript_revision import TranscriptRevision
from .upload_form import UploadForm
from .upload_form_fields import UploadFormFields
from .uploaded_part_view import UploadedPartView
from .webhook_attempt import WebhookAttempt
from .webhook_secret import WebhookSecret
from .webhook_settings import WebhookSettings
from .webhook_view import WebhookView

__all__ = (
    "ApiKeyCreated",
    "ApiKeyList",
    "ApiKeyView",
    "AudioLink",
    "ChunkProgress",
    "CorrectTranscriptRequest",
    "CorrectTranscriptRequestSpeakerNames",
    "Corrections",
    "CreateApiKeyRequest",
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
    "MultipartUpload",
    "PartUrl",
    "PartUrls",
    "PartUrlsRequest",
    "SegmentText",
    "TranscriptLink",
    "TranscriptLinkFormat",
    "TranscriptLinks",
    "TranscriptRevision",
    "UploadForm",
    "UploadFormFields",
    "UploadedPartView",
    "WebhookAttempt",
    "WebhookSecret",
    "WebhookSettings",
    "WebhookView",
)
