"""The upload-status function: an upload's S3 event in, its job QUEUED at once (issue 10, item 7).

S3 -> the uploads SNS topic -> the upload-status SQS queue (raw delivery: each body is the S3 event
itself) -> this Lambda, through an SQS event source with partial batch responses. It does what
hark.domain.arrivals decides for an arrival, whatever the transcription workers are doing (busy, scaling
from zero): UPLOADING -> QUEUED with the object's real size, or the object deleted when no job
accounts for it. The workers read the same event from the transcribe queue and call the same
idempotent step, so it does not matter which of the two sees the upload first.

A body no one can read is reported as a batch item failure: SQS delivers it again, and after the
queue's maxReceiveCount moves it to the upload-status DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hark.domain import aws
from hark.domain.arrivals import receive_upload
from hark.domain.messages import BrokenMessage, ChunkMessage, parse_transcribe_body

logger = Logger(service="upload-status")
metrics = Metrics(namespace="Hark", service="upload-status")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        work = parse_transcribe_body(record.body)
    except BrokenMessage as err:
        logger.error("unreadable upload event: left for the dead-letter queue", reason=str(err))
        raise
    if isinstance(work, ChunkMessage):  # workers send these to the transcribe queue only
        raise BrokenMessage("a chunk message on the upload-status queue")
    store, s3 = aws.job_store(), aws.client("s3")
    for event in work:
        arrival = receive_upload(store, s3, event)
        if arrival.job is None:
            logger.warning(arrival.orphan_reason, job_id=event.job_id, key=event.key, bytes=event.size)
            metrics.add_metric(name="OrphanUploadsDeleted", unit=MetricUnit.Count, value=1)
        elif arrival.queued:
            logger.info(
                "upload arrived: job queued", job_id=event.job_id, bytes=event.size, uploaded_at=event.event_time
            )
        else:
            logger.info("upload arrived: job already past UPLOADING", job_id=event.job_id, status=arrival.job.status)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context) -> PartialItemFailureResponse:
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        if metrics.metric_set:  # EMF only when there is something to count (an orphan deleted)
            metrics.flush_metrics()
