from enum import StrEnum


class JobStatus(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PROCESSING = "PROCESSING"
    QUEUED = "QUEUED"
    UPLOADING = "UPLOADING"

    def __str__(self) -> str:
        return str(self.value)
