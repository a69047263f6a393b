from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.transcript_link_format import TranscriptLinkFormat

T = TypeVar("T", bound="TranscriptLink")


@_attrs_define
class TranscriptLink:
    """
    Attributes:
        url (str):
        format_ (TranscriptLinkFormat):
        expires_at (str):
    """

    url: str
    format_: TranscriptLinkFormat
    expires_at: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        format_ = self.format_.value

        expires_at = self.expires_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "url": url,
                "format": format_,
                "expires_at": expires_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        url = d.pop("url")

        format_ = TranscriptLinkFormat(d.pop("format"))

        expires_at = d.pop("expires_at")

        transcript_link = cls(
            url=url,
            format_=format_,
            expires_at=expires_at,
        )

        transcript_link.additional_properties = d
        return transcript_link

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
