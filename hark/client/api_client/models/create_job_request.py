from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.create_job_request_notify_type_0_item import CreateJobRequestNotifyType0Item
from ..models.create_job_request_task import CreateJobRequestTask
from ..types import UNSET, Unset

T = TypeVar("T", bound="CreateJobRequest")


@_attrs_define
class CreateJobRequest:
    """
    Attributes:
        filename (str): The file's name, in any script. Kept for display, the email and downloads; its S3 key uses an
            ASCII form with the same extension.
        content_type (str): The file's MIME type, e.g. audio/mpeg.
        size (int): The file's size in bytes (at most the configured maximum, 2 GiB by default).
        language (str | Unset): Spoken language: auto to detect it, a Whisper code (es) or a language's name (Spanish,
            spanish, español). Stored as the code. Default: 'auto'.
        prompt (None | str | Unset): Names and terms the recording uses (e.g. 'Quilter, Kubernetes, Nguyen'): Whisper's
            initial prompt, so it spells them this way. At most 500 characters.
        task (CreateJobRequestTask | Unset): transcribe (in the spoken language) or translate (to English). The
            transcript's language stays the spoken one. Default: CreateJobRequestTask.TRANSCRIBE.
        webhook_url (None | str | Unset): Where to POST the finished job (Standard Webhooks, signed with your GET
            /webhook-secret). https, to a public address. Default: your default webhook URL (PUT /webhook-settings), if any.
        notify (list[CreateJobRequestNotifyType0Item] | None | Unset): How to hear that the job finished: any of
            "email", "webhook"; [] for neither. Default: email, plus webhook when a webhook URL applies. "webhook" needs
            one.
        speaker_labels (bool | Unset): Label who spoke when: every word and segment gets a speaker (A, B, ...), the txt
            turns start 'A: ', VTT uses voice tags, SRT a prefix. Off by default. Default: False.
        speakers_expected (int | None | Unset): With speaker_labels: how many people speak, if known (otherwise it is
            estimated).
        min_speakers (int | None | Unset): With speaker_labels and no speakers_expected: at least this many people speak
            (the estimate is held to it).
        max_speakers (int | None | Unset): With speaker_labels and no speakers_expected: at most this many people speak.
    """

    filename: str
    content_type: str
    size: int
    language: str | Unset = "auto"
    prompt: str | Unset | None = UNSET
    task: CreateJobRequestTask | Unset = CreateJobRequestTask.TRANSCRIBE
    webhook_url: str | Unset | None = UNSET
    notify: list[CreateJobRequestNotifyType0Item] | Unset | None = UNSET
    speaker_labels: bool | Unset = False
    speakers_expected: int | Unset | None = UNSET
    min_speakers: int | Unset | None = UNSET
    max_speakers: int | Unset | None = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        filename = self.filename

        content_type = self.content_type

        size = self.size

        language = self.language

        prompt: str | Unset | None
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        task: str | Unset = UNSET
        if not isinstance(self.task, Unset):
            task = self.task.value

        webhook_url: str | Unset | None
        if isinstance(self.webhook_url, Unset):
            webhook_url = UNSET
        else:
            webhook_url = self.webhook_url

        notify: list[str] | Unset | None
        if isinstance(self.notify, Unset):
            notify = UNSET
        elif isinstance(self.notify, list):
            notify = []
            for notify_type_0_item_data in self.notify:
                notify_type_0_item = notify_type_0_item_data.value
                notify.append(notify_type_0_item)

        else:
            notify = self.notify

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

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "filename": filename,
                "content_type": content_type,
                "size": size,
            }
        )
        if language is not UNSET:
            field_dict["language"] = language
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if task is not UNSET:
            field_dict["task"] = task
        if webhook_url is not UNSET:
            field_dict["webhook_url"] = webhook_url
        if notify is not UNSET:
            field_dict["notify"] = notify
        if speaker_labels is not UNSET:
            field_dict["speaker_labels"] = speaker_labels
        if speakers_expected is not UNSET:
            field_dict["speakers_expected"] = speakers_expected
        if min_speakers is not UNSET:
            field_dict["min_speakers"] = min_speakers
        if max_speakers is not UNSET:
            field_dict["max_speakers"] = max_speakers

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        filename = d.pop("filename")

        content_type = d.pop("content_type")

        size = d.pop("size")

        language = d.pop("language", UNSET)

        def _parse_prompt(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(str | Unset | None, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        _task = d.pop("task", UNSET)
        task: CreateJobRequestTask | Unset
        if isinstance(_task, Unset):
            task = UNSET
        else:
            task = CreateJobRequestTask(_task)

        def _parse_webhook_url(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(str | Unset | None, data)

        webhook_url = _parse_webhook_url(d.pop("webhook_url", UNSET))

        def _parse_notify(data: object) -> list[CreateJobRequestNotifyType0Item] | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                notify_type_0 = []
                _notify_type_0 = data
                for notify_type_0_item_data in _notify_type_0:
                    notify_type_0_item = CreateJobRequestNotifyType0Item(notify_type_0_item_data)

                    notify_type_0.append(notify_type_0_item)

                return notify_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[CreateJobRequestNotifyType0Item] | Unset | None, data)

        notify = _parse_notify(d.pop("notify", UNSET))

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

        create_job_request = cls(
            filename=filename,
            content_type=content_type,
            size=size,
            language=language,
            prompt=prompt,
            task=task,
            webhook_url=webhook_url,
            notify=notify,
            speaker_labels=speaker_labels,
            speakers_expected=speakers_expected,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )

        create_job_request.additional_properties = d
        return create_job_request

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
