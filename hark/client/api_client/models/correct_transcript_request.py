from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.correct_transcript_request_speaker_names import CorrectTranscriptRequestSpeakerNames
    from ..models.segment_text import SegmentText


T = TypeVar("T", bound="CorrectTranscriptRequest")


@_attrs_define
class CorrectTranscriptRequest:
    """
    Attributes:
        revision (int): The revision these corrections were made on (the job's transcript_revision when read).
        segments (list[SegmentText] | Unset): The segments whose text changes, by index.
        speaker_names (CorrectTranscriptRequestSpeakerNames | Unset): Names for the speaker labels, e.g. {"A":
            "Morgan"}; null removes a name. Names given before are kept.
    """

    revision: int
    segments: list[SegmentText] | Unset = UNSET
    speaker_names: CorrectTranscriptRequestSpeakerNames | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        revision = self.revision

        segments: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.segments, Unset):
            segments = []
            for segments_item_data in self.segments:
                segments_item = segments_item_data.to_dict()
                segments.append(segments_item)

        speaker_names: dict[str, Any] | Unset = UNSET
        if not isinstance(self.speaker_names, Unset):
            speaker_names = self.speaker_names.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "revision": revision,
            }
        )
        if segments is not UNSET:
            field_dict["segments"] = segments
        if speaker_names is not UNSET:
            field_dict["speaker_names"] = speaker_names

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.correct_transcript_request_speaker_names import CorrectTranscriptRequestSpeakerNames
        from ..models.segment_text import SegmentText

        d = dict(src_dict)
        revision = d.pop("revision")

        _segments = d.pop("segments", UNSET)
        segments: list[SegmentText] | Unset = UNSET
        if _segments is not UNSET:
            segments = []
            for segments_item_data in _segments:
                segments_item = SegmentText.from_dict(segments_item_data)

                segments.append(segments_item)

        _speaker_names = d.pop("speaker_names", UNSET)
        speaker_names: CorrectTranscriptRequestSpeakerNames | Unset
        if isinstance(_speaker_names, Unset):
            speaker_names = UNSET
        else:
            speaker_names = CorrectTranscriptRequestSpeakerNames.from_dict(_speaker_names)

        correct_transcript_request = cls(
            revision=revision,
            segments=segments,
            speaker_names=speaker_names,
        )

        correct_transcript_request.additional_properties = d
        return correct_transcript_request

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
