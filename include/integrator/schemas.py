"""Request/response bodies of the Saklama API (these shape the published OpenAPI)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "ErrorBody",
    "FileEntry",
    "FileResult",
    "ManifestItem",
    "MonthListing",
    "MonthStatusOut",
    "SubmitIn",
    "SubmitOut",
    "Tree",
    "UploadOut",
    "YearListing",
]

SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


class ErrorDetail(BaseModel):
    code: str
    message_tr: str
    message_en: str
    file: str | None = None
    details: dict = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail


class UploadOut(BaseModel):
    name: str
    sha256: str
    size: int
    created: bool = Field(description="false when identical bytes were already archived (idempotent re-upload)")
    uploaded_at: dt.datetime
    retention_until: dt.date
    storage: str
    version_id: str | None = None
    committed: bool = Field(
        default=False,
        description="true when the name is already committed (a set listing it was Yedeklendi); "
        "false: staged until a submitted set listing it is validated",
    )


class ManifestItem(BaseModel):
    name: str = Field(max_length=64, description="zip file name, e.g. 1234567801-201909-Y-000000.zip")
    sha256: str = Field(pattern=SHA256_PATTERN)
    xml_sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        description="SHA-256 of the XML inside the zip, as the sender verified it; the set is refused "
        "when the stored XML differs (recommended; our client always sends it)",
    )


class SubmitIn(BaseModel):
    taxpayer_id: str = Field(pattern=r"^[0-9]{10,11}$")
    branch: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    period: str = Field(pattern=r"^[0-9]{6}$", description="YYYYMM")
    source: str = Field(default="Airflow", min_length=1, max_length=64)
    files: list[ManifestItem] = Field(min_length=1, max_length=500)

    @field_validator("branch")
    @classmethod
    def _branch_from_0001(cls, v: str | None) -> str | None:
        if v == "0000":
            raise ValueError("branch numbers start at 0001 (şube numaraları 0001'den başlar)")
        return v


class SubmitOut(BaseModel):
    submission_id: int
    status: str
    status_en: str
    created: bool


class FileResult(BaseModel):
    name: str
    sha256: str | None = None
    size: int | None = None
    status: str
    problems: list[dict] = Field(default_factory=list)
    retention_until: dt.date | None = None
    xml_sha256: str | None = None


class FixityFileOut(BaseModel):
    name: str
    kind: str  # mismatch | missing | unreadable | lock
    committed: bool
    message_tr: str
    message_en: str


class FixityOut(BaseModel):
    """What the latest fixity audit found in this month's stored objects (absent when clean)."""

    status: str = "Bozuk/Eksik"
    status_en: str = "damaged or missing in the archive"
    audit_run_id: int
    checked_at: dt.datetime | None
    files: list[FixityFileOut]


class MonthStatusOut(BaseModel):
    taxpayer_id: str
    branch: str | None
    period: str
    label_tr: str
    status: str
    status_en: str
    message_tr: str
    message_en: str
    description: str | None = None
    source: str | None = None
    submission_id: int | None = None
    submitted_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    retention_until: dt.date | None = None
    files: list[FileResult] = Field(default_factory=list)
    problems: list[dict] = Field(default_factory=list)
    fixity: FixityOut | None = None


class FileEntry(BaseModel):
    name: str
    code: str
    part: int
    branch: str | None
    sha256: str
    size: int
    uploaded_at: dt.datetime
    retention_until: dt.date
    committed: bool = True


class MonthListing(BaseModel):
    period: str
    label_tr: str
    files: list[FileEntry]


class YearListing(BaseModel):
    year: int
    months: list[MonthListing]


class Tree(BaseModel):
    taxpayer_id: str
    years: list[YearListing]
