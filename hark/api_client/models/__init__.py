"""Contains all the data models used in inputs/outputs"""

from .audio_link import AudioLink
from .chunk_progress import ChunkProgress
from .create_job_request import CreateJobRequest
from .create_job_request_task import CreateJobRequestTask
from .create_job_response import CreateJobResponse
from .error_detail import ErrorDetail
from .error_response import ErrorResponse
from .gateway_error import GatewayError
from .get_transcript_jobs_job_id_transcript_get_format import GetTranscriptJobsJobIdTranscriptGetFormat
from .job_list import JobList
from .job_status import JobStatus
from .job_view import JobView
from .job_view_task import JobViewTask
from .transcript_link import TranscriptLink
from .transcript_link_format import TranscriptLinkFormat
from .transcript_links import TranscriptLinks
from .upload_form import UploadForm
from .upload_form_fields import UploadFormFields

__all__ = (
    "AudioLink",
    "ChunkProgress",
    "CreateJobRequest",
    "CreateJobRequestTask",
    "CreateJobResponse",
    "ErrorDetail",
    "ErrorResponse",
    "GatewayError",
    "GetTranscriptJobsJobIdTranscriptGetFormat",
    "JobList",
    "JobStatus",
    "JobView",
    "JobViewTask",
    "TranscriptLink",
    "TranscriptLinkFormat",
    "TranscriptLinks",
    "UploadForm",
    "UploadFormFields",
)
