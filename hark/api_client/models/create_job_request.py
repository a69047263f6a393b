from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.create_job_request_language import CreateJobRequestLanguage
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
        language (CreateJobRequestLanguage | Unset): Spoken language (a Whisper code), or auto to detect it. Default:
            CreateJobRequestLanguage.AUTO.
    """

    filename: str
    content_type: str
    size: int
    language: CreateJobRequestLanguage | Unset = CreateJobRequestLanguage.AUTO
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        filename = self.filename

        content_type = self.content_type

        size = self.size

        language: str | Unset = UNSET
        if not isinstance(self.language, Unset):
            language = self.language.value

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

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        filename = d.pop("filename")

        content_type = d.pop("content_type")

        size = d.pop("size")

        _language = d.pop("language", UNSET)
        language: CreateJobRequestLanguage | Unset
        if isinstance(_language, Unset):
            language = UNSET
        else:
            language = CreateJobRequestLanguage(_language)

        create_job_request = cls(
            filename=filename,
            content_type=content_type,
            size=size,
            language=language,
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
