from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.part_url import PartUrl


T = TypeVar("T", bound="PartUrls")


@_attrs_define
class PartUrls:
    """
    Attributes:
        urls (list[PartUrl]):
        expires_at (str): ISO 8601, UTC: when these URLs stop being accepted; ask again after.
    """

    urls: list[PartUrl]
    expires_at: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        urls = []
        for urls_item_data in self.urls:
            urls_item = urls_item_data.to_dict()
            urls.append(urls_item)

        expires_at = self.expires_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "urls": urls,
                "expires_at": expires_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.part_url import PartUrl

        d = dict(src_dict)
        urls = []
        _urls = d.pop("urls")
        for urls_item_data in _urls:
            urls_item = PartUrl.from_dict(urls_item_data)

            urls.append(urls_item)

        expires_at = d.pop("expires_at")

        part_urls = cls(
            urls=urls,
            expires_at=expires_at,
        )

        part_urls.additional_properties = d
        return part_urls

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
