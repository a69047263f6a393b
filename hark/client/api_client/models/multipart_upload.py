from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.uploaded_part_view import UploadedPartView


T = TypeVar("T", bound="MultipartUpload")


@_attrs_define
class MultipartUpload:
    """A big upload in parts (issue 25): PUT each part's bytes to its URL (POST .../multipart/parts), then
    POST .../multipart/complete. The same call resumes: parts_done is what S3 already has.

        Attributes:
            upload_id (str):
            part_size (int): Bytes per part: part n is bytes (n-1)*part_size up to n*part_size of the file.
            part_count (int): Parts 1 to part_count; the last one holds what is left.
            parts_done (list[UploadedPartView]): Parts already uploaded (resume from the others).
    """

    upload_id: str
    part_size: int
    part_count: int
    parts_done: list[UploadedPartView]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        upload_id = self.upload_id

        part_size = self.part_size

        part_count = self.part_count

        parts_done = []
        for parts_done_item_data in self.parts_done:
            parts_done_item = parts_done_item_data.to_dict()
            parts_done.append(parts_done_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "upload_id": upload_id,
                "part_size": part_size,
                "part_count": part_count,
                "parts_done": parts_done,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.uploaded_part_view import UploadedPartView

        d = dict(src_dict)
        upload_id = d.pop("upload_id")

        part_size = d.pop("part_size")

        part_count = d.pop("part_count")

        parts_done = []
        _parts_done = d.pop("parts_done")
        for parts_done_item_data in _parts_done:
            parts_done_item = UploadedPartView.from_dict(parts_done_item_data)

            parts_done.append(parts_done_item)

        multipart_upload = cls(
            upload_id=upload_id,
            part_size=part_size,
            part_count=part_count,
            parts_done=parts_done,
        )

        multipart_upload.additional_properties = d
        return multipart_upload

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
