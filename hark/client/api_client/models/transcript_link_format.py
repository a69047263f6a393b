from enum import StrEnum


class TranscriptLinkFormat(StrEnum):
    JSON = "json"
    SRT = "srt"
    TXT = "txt"
    VTT = "vtt"

    def __str__(self) -> str:
        return str(self.value)
