"""Errors the API returns: a stable code, Turkish and English messages, the file concerned."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "error_body"]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message_tr: str,
        message_en: str,
        *,
        file: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status = status
        self.code = code
        self.message_tr = message_tr
        self.message_en = message_en
        self.file = file
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message_tr, self.message_en, file=self.file, details=self.details)


def error_body(
    code: str, message_tr: str, message_en: str, *, file: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message_tr": message_tr,
            "message_en": message_en,
            "file": file,
            "details": details or {},
        }
    }
