from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="CorrectTranscriptRequestSpeakerNames")


@_attrs_define
class CorrectTranscriptRequestSpeakerNames:
    """Names for the speaker labels, e.g. {"A": "Morgan"}; null removes a name. Names given before are kept."""

    additional_properties: dict[str, str | None] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:

        field_dict: dict[str, Any] = {}
        for prop_name, prop in self.additional_properties.items():
            field_dict[prop_name] = prop

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        correct_transcript_request_speaker_names = cls()

        additional_properties = {}
        for prop_name, prop_dict in d.items():

            def _parse_additional_property(data: object) -> str | None:
                if data is None:
                    return data
                return cast(str | None, data)

            additional_property = _parse_additional_property(prop_dict)

            additional_properties[prop_name] = additional_property

        correct_transcript_request_speaker_names.additional_properties = additional_properties
        return correct_transcript_request_speaker_names

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> str | None:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: str | None) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
