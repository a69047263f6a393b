from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.upload_form_fields import UploadFormFields


T = TypeVar("T", bound="UploadForm")


@_attrs_define
class UploadForm:
    """
    Attributes:
        url (str):
        fields (UploadFormFields): Send every field as multipart/form-data, then the file as the field named 'file'.
        expires_at (str): ISO 8601, UTC: when the form stops being accepted.
        method (Literal['POST'] | Unset):  Default: 'POST'.
    """

    url: str
    fields: UploadFormFields
    expires_at: str
    method: Literal["POST"] | Unset = "POST"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        fields = self.fields.to_dict()

        expires_at = self.expires_at

        method = self.method

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "url": url,
                "fields": fields,
                "expires_at": expires_at,
            }
        )
        if method is not UNSET:
            field_dict["method"] = method

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.upload_form_fields import UploadFormFields

        d = dict(src_dict)
        url = d.pop("url")

        fields = UploadFormFields.from_dict(d.pop("fields"))

        expires_at = d.pop("expires_at")

        method = cast(Literal["POST"] | Unset, d.pop("method", UNSET))
        if method != "POST" and not isinstance(method, Unset):
            raise ValueError(f"method must match const 'POST', got '{method}'")

        upload_form = cls(
            url=url,
            fields=fields,
            expires_at=expires_at,
            method=method,
        )

        upload_form.additional_properties = d
        return upload_form

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
