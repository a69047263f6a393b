from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_view import JobView
    from ..models.multipart_upload import MultipartUpload
    from ..models.upload_form import UploadForm


T = TypeVar("T", bound="CreateJobResponse")


@_attrs_define
class CreateJobResponse:
    """
    Attributes:
        job (JobView):
        upload (UploadForm):
        multipart (MultipartUpload | None | Unset): For a file over the multipart threshold (100 MiB by default): the
            upload in parts, started; send the file this way (resumable) rather than with `upload`.
    """

    job: JobView
    upload: UploadForm
    multipart: MultipartUpload | Unset | None = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.multipart_upload import MultipartUpload

        job = self.job.to_dict()

        upload = self.upload.to_dict()

        multipart: dict[str, Any] | Unset | None
        if isinstance(self.multipart, Unset):
            multipart = UNSET
        elif isinstance(self.multipart, MultipartUpload):
            multipart = self.multipart.to_dict()
        else:
            multipart = self.multipart

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job": job,
                "upload": upload,
            }
        )
        if multipart is not UNSET:
            field_dict["multipart"] = multipart

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_view import JobView
        from ..models.multipart_upload import MultipartUpload
        from ..models.upload_form import UploadForm

        d = dict(src_dict)
        job = JobView.from_dict(d.pop("job"))

        upload = UploadForm.from_dict(d.pop("upload"))

        def _parse_multipart(data: object) -> MultipartUpload | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                multipart_type_0 = MultipartUpload.from_dict(data)

                return multipart_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(MultipartUpload | Unset | None, data)

        multipart = _parse_multipart(d.pop("multipart", UNSET))

        create_job_response = cls(
            job=job,
            upload=upload,
            multipart=multipart,
        )

        create_job_response.additional_properties = d
        return create_job_response

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
