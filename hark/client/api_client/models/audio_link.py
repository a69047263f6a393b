from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AudioLink")


@_attrs_define
class AudioLink:
    """
    Attributes:
        url (str): A presigned GET of the recording, for playback (range requests work): a video's audio rendition once
            it is made, else the upload.
        content_type (str): The recording's type: audio/mp4 for a rendition, else as uploaded.
        expires_at (str): ISO 8601, UTC: ask again after this.
    """

    url: str
    content_type: str
    expires_at: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        content_type = self.content_type

        expires_at = self.expires_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "url": url,
                "content_type": content_type,
                "expires_at": expires_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        url = d.pop("url")

        content_type = d.pop("content_type")

        expires_at = d.pop("expires_at")

        audio_link = cls(
            url=url,
            content_type=content_type,
            expires_at=expires_at,
        )

        audio_link.additional_properties = d
        return audio_link

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
