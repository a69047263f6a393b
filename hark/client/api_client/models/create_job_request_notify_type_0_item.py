from enum import StrEnum


class CreateJobRequestNotifyType0Item(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"

    def __str__(self) -> str:
        return str(self.value)
