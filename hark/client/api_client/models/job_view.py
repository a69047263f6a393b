from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_status import JobStatus
from ..models.job_view_notify_item import JobViewNotifyItem
from ..models.job_view_task import JobViewTask
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.chunk_progress import ChunkProgress
    from ..models.transcript_links import TranscriptLinks
    from ..models.webhook_view import WebhookView


T = TypeVar("T", bound="JobView")


@_attrs_define
class JobView:
    """
    Attributes:
        job_id (str):
        status (JobStatus):
        filename (str):
        content_type (str):
        size (int):
        language (str):
        detected_language (None | str):
        duration_seconds (float | None):
        created_at (str):
        updated_at (str):
        queued_at (None | str):
        started_at (None | str):
        finished_at (None | str):
        error (None | str):
        chunks (ChunkProgress | None):
        transcript (None | TranscriptLinks): Presigned GET links, present only when COMPLETED.
        prompt (None | str | Unset):
        task (JobViewTask | Unset):  Default: JobViewTask.TRANSCRIBE.
        speaker_labels (bool | Unset): Speakers were asked for (speaker_labels at creation). Default: False.
        speakers_expected (int | None | Unset):
        min_speakers (int | None | Unset):
        max_speakers (int | None | Unset):
        no_speech (bool | Unset): COMPLETED with no speech detected (silence, noise or music): the transcript is empty.
            Default: False.
        model_seconds (float | None | Unset): COMPLETED: the model time this job took (its share of batches shared with
            other jobs).
        real_time_factor (float | None | Unset): COMPLETED: model seconds per audio second (below 1: faster than real
            time).
        cost_usd (float | None | Unset): COMPLETED: the model time at the configured instance price
            (HARK_INSTANCE_USD_PER_HOUR).
        notify (list[JobViewNotifyItem] | Unset): How the owner hears of the end.
        webhook (None | Unset | WebhookView): The job's webhook and its delivery attempts, if it has one.
    """

    job_id: str
    status: JobStatus
    filename: str
    content_type: str
    size: int
    language: str
    detected_language: str | None
    duration_seconds: float | None
    created_at: str
    updated_at: str
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    chunks: ChunkProgress | None
    transcript: TranscriptLinks | None
    prompt: str | Unset | None = UNSET
    task: JobViewTask | Unset = JobViewTask.TRANSCRIBE
    speaker_labels: bool | Unset = False
    speakers_expected: int | Unset | None = UNSET
    min_speakers: int | Unset | None = UNSET
    max_speakers: int | Unset | None = UNSET
    no_speech: bool | Unset = False
    model_seconds: float | Unset | None = UNSET
    real_time_factor: float | Unset | None = UNSET
    cost_usd: float | Unset | None = UNSET
    notify: list[JobViewNotifyItem] | Unset = UNSET
    webhook: Unset | WebhookView | None = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.chunk_progress import ChunkProgress
        from ..models.transcript_links import TranscriptLinks
        from ..models.webhook_view import WebhookView

        job_id = self.job_id

        status = self.status.value

        filename = self.filename

        content_type = self.content_type

        size = self.size

        language = self.language

        detected_language: str | None
        detected_language = self.detected_language

        duration_seconds: float | None
        duration_seconds = self.duration_seconds

        created_at = self.created_at

        updated_at = self.updated_at

        queued_at: str | None
        queued_at = self.queued_at

        started_at: str | None
        started_at = self.started_at

        finished_at: str | None
        finished_at = self.finished_at

        error: str | None
        error = self.error

        chunks: dict[str, Any] | None
        if isinstance(self.chunks, ChunkProgress):
            chunks = self.chunks.to_dict()
        else:
            chunks = self.chunks

        transcript: dict[str, Any] | None
        if isinstance(self.transcript, TranscriptLinks):
            transcript = self.transcript.to_dict()
        else:
            transcript = self.transcript

        prompt: str | Unset | None
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        task: str | Unset = UNSET
        if not isinstance(self.task, Unset):
            task = self.task.value

        speaker_labels = self.speaker_labels

        speakers_expected: int | Unset | None
        if isinstance(self.speakers_expected, Unset):
            speakers_expected = UNSET
        else:
            speakers_expected = self.speakers_expected

        min_speakers: int | Unset | None
        if isinstance(self.min_speakers, Unset):
            min_speakers = UNSET
        else:
            min_speakers = self.min_speakers

        max_speakers: int | Unset | None
        if isinstance(self.max_speakers, Unset):
            max_speakers = UNSET
        else:
            max_speakers = self.max_speakers

        no_speech = self.no_speech

        model_seconds: float | Unset | None
        if isinstance(self.model_seconds, Unset):
            model_seconds = UNSET
        else:
            model_seconds = self.model_seconds

        real_time_factor: float | Unset | None
        if isinstance(self.real_time_factor, Unset):
            real_time_factor = UNSET
        else:
            real_time_factor = self.real_time_factor

        cost_usd: float | Unset | None
        if isinstance(self.cost_usd, Unset):
            cost_usd = UNSET
        else:
            cost_usd = self.cost_usd

        notify: list[str] | Unset = UNSET
        if not isinstance(self.notify, Unset):
            notify = []
            for notify_item_data in self.notify:
                notify_item = notify_item_data.value
                notify.append(notify_item)

        webhook: dict[str, Any] | Unset | None
        if isinstance(self.webhook, Unset):
            webhook = UNSET
        elif isinstance(self.webhook, WebhookView):
            webhook = self.webhook.to_dict()
        else:
            webhook = self.webhook

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "status": status,
                "filename": filename,
                "content_type": content_type,
                "size": size,
                "language": language,
                "detected_language": detected_language,
                "duration_seconds": duration_seconds,
                "created_at": created_at,
                "updated_at": updated_at,
                "queued_at": queued_at,
                "started_at": started_at,
                "finished_at": finished_at,
                "error": error,
                "chunks": chunks,
                "transcript": transcript,
            }
        )
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if task is not UNSET:
            field_dict["task"] = task
        if speaker_labels is not UNSET:
            field_dict["speaker_labels"] = speaker_labels
        if speakers_expected is not UNSET:
            field_dict["speakers_expected"] = speakers_expected
        if min_speakers is not UNSET:
            field_dict["min_speakers"] = min_speakers
        if max_speakers is not UNSET:
            field_dict["max_speakers"] = max_speakers
        if no_speech is not UNSET:
            field_dict["no_speech"] = no_speech
        if model_seconds is not UNSET:
            field_dict["model_seconds"] = model_seconds
        if real_time_factor is not UNSET:
            field_dict["real_time_factor"] = real_time_factor
        if cost_usd is not UNSET:
            field_dict["cost_usd"] = cost_usd
        if notify is not UNSET:
            field_dict["notify"] = notify
        if webhook is not UNSET:
            field_dict["webhook"] = webhook

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chunk_progress import ChunkProgress
        from ..models.transcript_links import TranscriptLinks
        from ..models.webhook_view import WebhookView

        d = dict(src_dict)
        job_id = d.pop("job_id")

        status = JobStatus(d.pop("status"))

        filename = d.pop("filename")

        content_type = d.pop("content_type")

        size = d.pop("size")

        language = d.pop("language")

        def _parse_detected_language(data: object) -> str | None:
            if data is None:
                return data
            return cast(str | None, data)

        detected_language = _parse_detected_language(d.pop("detected_language"))

        def _parse_duration_seconds(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        duration_seconds = _parse_duration_seconds(d.pop("duration_seconds"))

        created_at = d.pop("created_at")

        updated_at = d.pop("updated_at")

        def _parse_queued_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(str | None, data)

        queued_at = _parse_queued_at(d.pop("queued_at"))

        def _parse_started_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(str | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        def _parse_finished_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(str | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        def _parse_error(data: object) -> str | None:
            if data is None:
                return data
            return cast(str | None, data)

        error = _parse_error(d.pop("error"))

        def _parse_chunks(data: object) -> ChunkProgress | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                chunks_type_0 = ChunkProgress.from_dict(data)

                return chunks_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ChunkProgress | None, data)

        chunks = _parse_chunks(d.pop("chunks"))

        def _parse_transcript(data: object) -> TranscriptLinks | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                transcript_type_0 = TranscriptLinks.from_dict(data)

                return transcript_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(TranscriptLinks | None, data)

        transcript = _parse_transcript(d.pop("transcript"))

        def _parse_prompt(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(str | Unset | None, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        _task = d.pop("task", UNSET)
        task: JobViewTask | Unset
        if isinstance(_task, Unset):
            task = UNSET
        else:
            task = JobViewTask(_task)

        speaker_labels = d.pop("speaker_labels", UNSET)

        def _parse_speakers_expected(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | Unset | None, data)

        speakers_expected = _parse_speakers_expected(d.pop("speakers_expected", UNSET))

        def _parse_min_speakers(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | Unset | None, data)

        min_speakers = _parse_min_speakers(d.pop("min_speakers", UNSET))

        def _parse_max_speakers(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | Unset | None, data)

        max_speakers = _parse_max_speakers(d.pop("max_speakers", UNSET))

        no_speech = d.pop("no_speech", UNSET)

        def _parse_model_seconds(data: object) -> float | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | Unset | None, data)

        model_seconds = _parse_model_seconds(d.pop("model_seconds", UNSET))

        def _parse_real_time_factor(data: object) -> float | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | Unset | None, data)

        real_time_factor = _parse_real_time_factor(d.pop("real_time_factor", UNSET))

        def _parse_cost_usd(data: object) -> float | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | Unset | None, data)

        cost_usd = _parse_cost_usd(d.pop("cost_usd", UNSET))

        _notify = d.pop("notify", UNSET)
        notify: list[JobViewNotifyItem] | Unset = UNSET
        if _notify is not UNSET:
            notify = []
            for notify_item_data in _notify:
                notify_item = JobViewNotifyItem(notify_item_data)

                notify.append(notify_item)

        def _parse_webhook(data: object) -> Unset | WebhookView | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                webhook_type_0 = WebhookView.from_dict(data)

                return webhook_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Unset | WebhookView | None, data)

        webhook = _parse_webhook(d.pop("webhook", UNSET))

        job_view = cls(
            job_id=job_id,
            status=status,
            filename=filename,
            content_type=content_type,
            size=size,
            language=language,
            detected_language=detected_language,
            duration_seconds=duration_seconds,
            created_at=created_at,
            updated_at=updated_at,
            queued_at=queued_at,
            started_at=started_at,
            finished_at=finished_at,
            error=error,
            chunks=chunks,
            transcript=transcript,
            prompt=prompt,
            task=task,
            speaker_labels=speaker_labels,
            speakers_expected=speakers_expected,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            no_speech=no_speech,
            model_seconds=model_seconds,
            real_time_factor=real_time_factor,
            cost_usd=cost_usd,
            notify=notify,
            webhook=webhook,
        )

        job_view.additional_properties = d
        return job_view

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
