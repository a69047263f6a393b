from enum import StrEnum


class GetTranscriptJobsJobIdTranscriptGetFormat(StrEnum):
    JSON = "json"
    SRT = "srt"
    TXT = "txt"
    VTT = "vtt"

    def __str__(self) -> str:
        return str(self.value)
