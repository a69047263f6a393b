from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Corrections")


@_attrs_define
class Corrections:
    """What people's corrections say about the model's transcript (issue 26).

    Attributes:
        word_error_rate (float | None): The model transcript's WER against the latest correction (hark.domain.wer:
            normalised words); null when the correction emptied the transcript.
        edited_segments (int): Segments whose text the latest correction changed.
    """

    word_error_rate: float | None
    edited_segments: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        word_error_rate: float | None
        word_error_rate = self.word_error_rate

        edited_segments = self.edited_segments

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "word_error_rate": word_error_rate,
                "edited_segments": edited_segments,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_word_error_rate(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        word_error_rate = _parse_word_error_rate(d.pop("word_error_rate"))

        edited_segments = d.pop("edited_segments")

        corrections = cls(
            word_error_rate=word_error_rate,
            edited_segments=edited_segments,
        )

        corrections.additional_properties = d
        return corrections

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
