from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="SegmentText")


@_attrs_define
class SegmentText:
    """
    Attributes:
        index (int): The segment's position in the transcript JSON's `segments`, from 0.
        text (str): The segment's corrected text.
    """

    index: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        index = self.index

        text = self.text

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "index": index,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        index = d.pop("index")

        text = d.pop("text")

        segment_text = cls(
            index=index,
            text=text,
        )

        return segment_text
