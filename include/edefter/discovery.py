"""Find e-Defter files under a folder tree, read-only, and group them into ledger sets.

Layouts: flat folders, GİB-style ``<VKN>/<dd.mm.yyyy-dd.mm.yyyy>/<MM>/``, deeper
vendor trees, and one-per-file zips. Everything is keyed on file name + content,
never on folder names. The tree is only ever read: nothing is created, renamed,
extracted or touched in it.

Symbolic links are never followed out of the root (reported), directory links
are not followed at all (no loops), special files (FIFOs, sockets, devices) are
never opened (a FIFO would block the scan).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from include.edefter.ledger_set import LedgerSet, SetKey, assess
from include.edefter.naming import EDefterName, InvalidFileName, parse_name
from include.edefter.problems import Problem, Severity
from include.edefter.settings import XmlLimits

__all__ = ["Discovery", "FoundFile", "discover", "inspect_zip", "looks_like_edefter_name"]

_HASH_CHUNK = 1024 * 1024
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}

# Names that are probably meant to be e-Defter files (so a wrong one is reported,
# not silently ignored): .xml/.zip with a long digit run or a type code field.
_LOOKS_LIKE = re.compile(r"(?i)^(gib[-_ ]?)?\d{8,12}[-_ ]|[-_ ](y|k|yb|kb|dr)[-_ ]\d")


def looks_like_edefter_name(filename: str) -> bool:
    stem, dot, ext = filename.rpartition(".")
    return bool(dot) and ext.lower() in ("xml", "zip") and bool(_LOOKS_LIKE.search(stem))


class _ZipMemberStream:
    """A zip member stream that closes its archive with it."""

    def __init__(self, archive: zipfile.ZipFile, member: str) -> None:
        self._archive = archive
        self._stream = archive.open(member)

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._archive.close()

    def __enter__(self) -> _ZipMemberStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class FoundFile:
    """One e-Defter file on disk: a plain .xml or a one-member .zip."""

    path: Path  # absolute path of the file on disk (the container)
    rel_path: str  # POSIX path relative to the scanned root; used in all messages
    name: EDefterName
    container: str  # 'xml' | 'zip'
    size: int  # bytes on disk
    member: str | None = None  # zip member holding the XML

    def open(self) -> BinaryIO:
        """The XML bytes, exactly as stored (never re-encoded). Caller closes."""
        if self.container == "zip":
            assert self.member is not None
            archive = zipfile.ZipFile(self.path)
            try:
                return _ZipMemberStream(archive, self.member)  # type: ignore[return-value]
            except BaseException:
                archive.close()
                raise
        return open(self.path, "rb")  # noqa: SIM115 - returned to the caller

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the bytes on disk (the container)."""
        return _hash_stream(open(self.path, "rb"))  # noqa: SIM115

    @cached_property
    def content_sha256(self) -> str:
        """SHA-256 of the XML bytes (for xml files the same as ``sha256``)."""
        if self.container == "xml":
            return self.sha256
        return _hash_stream(self.open())

    def opener(self) -> tuple[EDefterName, Callable[[], BinaryIO]]:
        return (self.name, self.open)


def _hash_stream(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    with stream:
        while chunk := stream.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Discovery:
    """What a scan found: usable files, problems, and the ledger sets."""

    root: Path
    files: tuple[FoundFile, ...]
    problems: tuple[Problem, ...]
    sets: tuple[LedgerSet, ...]
    ignored: tuple[str, ...] = ()
    _by_name: dict[EDefterName, FoundFile] = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.files

    def found(self, name: EDefterName) -> FoundFile:
        return self._by_name[name]

    def set_for(self, key: SetKey) -> LedgerSet | None:
        for s in self.sets:
            if s.key == key:
                return s
        return None

    def month_inputs(self, ledger_set: LedgerSet) -> list[tuple[EDefterName, Callable[[], BinaryIO]]]:
        """Input for ``checks.validate_month``: (name, opener) in upload order."""
        return [self._by_name[n].opener() for n in ledger_set.ordered_files()]

    def problems_for(self, ledger_set: LedgerSet) -> tuple[Problem, ...]:
        """Discovery problems about files of this set (e.g. conflicting copies)."""
        rels = {self._by_name[n].rel_path for n in ledger_set.names}
        return tuple(p for p in self.problems if rels.intersection(p.files))


def _p(code: str, files: tuple[str, ...], tr: str, en: str, sev: Severity = Severity.ERROR) -> Problem:
    return Problem(code, files, tr, en, sev)


def inspect_zip(
    source: Path | BinaryIO, rel: str, name: EDefterName, limits: XmlLimits = XmlLimits.DEFAULT
) -> tuple[str | None, list[Problem]]:
    """Find the one usable member of a one-per-file zip; report everything odd.

    ``source`` is a path or a seekable file object (e.g. an uploaded zip);
    ``rel`` names it in problems. Returns (member name or None, problems):
    a member with problems (extra members) is still returned, a unusable zip gives None.
    """
    path = source
    problems: list[Problem] = []
    want = f"{name.stem}.xml"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        return None, [_p("zip.invalid", (rel,), f"geçerli bir zip dosyası değil ({exc})", f"not a valid zip file ({exc})")]
    if len(infos) > limits.max_zip_members:
        return None, [
            _p(
                "zip.too_many_members",
                (rel,),
                f"zip {len(infos)} dosya içeriyor; e-Defter zip'i tek dosya içerir",
                f"the zip holds {len(infos)} files; an e-Defter zip holds exactly one",
            )
        ]
    member: str | None = None
    for info in infos:
        mname = info.filename
        pure = PurePosixPath(mname.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", mname):
            problems.append(
                _p(
                    "zip.unsafe_member",
                    (rel,),
                    f"zip içinde güvensiz yol: {mname!r} (dizin dışına çıkma)",
                    f"unsafe path inside the zip: {mname!r} (path traversal)",
                )
            )
            continue
        if mname == want or (mname.lower() == want.lower() and "/" not in mname):
            member = mname
    if member is None and not any(p.code == "zip.unsafe_member" for p in problems):
        found = ", ".join(repr(i.filename) for i in infos) or "hiç dosya yok / no files"
        problems.append(
            _p(
                "zip.member_name_mismatch",
                (rel,),
                f"zip içinde {want} bekleniyordu, bulunan: {found}",
                f"expected {want} inside the zip, found: {found}",
            )
        )
    elif len(infos) > 1:
        extra = ", ".join(repr(i.filename) for i in infos if i.filename != member)
        problems.append(
            _p(
                "zip.extra_members",
                (rel,),
                f"zip'te {want} dışında dosyalar var: {extra}",
                f"the zip holds files besides {want}: {extra}",
            )
        )
    if member is not None:
        info = next(i for i in infos if i.filename == member)
        if info.flag_bits & 0x1:
            problems.append(_p("zip.encrypted", (rel,), "zip içeriği şifreli", "the zip member is encrypted"))
            member = None
        elif info.compress_type not in _SUPPORTED_COMPRESSION:
            problems.append(
                _p(
                    "zip.unsupported_compression",
                    (rel,),
                    f"desteklenmeyen zip sıkıştırma yöntemi {info.compress_type}",
                    f"unsupported zip compression method {info.compress_type}",
                )
            )
            member = None
        elif info.file_size > limits.max_file_bytes or (
            info.compress_size > 0 and info.file_size / info.compress_size > limits.max_zip_ratio
            and info.file_size > 10 * 1024 * 1024
        ):
            problems.append(
                _p(
                    "zip.too_large",
                    (rel,),
                    f"zip içeriği çok büyük veya aşırı sıkıştırılmış ({info.file_size} bayt): zip bombası olabilir",
                    f"the zip content is too large or too highly compressed ({info.file_size} bytes): possible zip bomb",
                )
            )
            member = None
    return member, problems


def discover(root: Path, *, limits: XmlLimits = XmlLimits.DEFAULT) -> Discovery:
    """Scan ``root`` (read-only) for e-Defter files and group them into ledger sets."""
    root = Path(root)
    problems: list[Problem] = []
    candidates: list[FoundFile] = []
    ignored: list[str] = []
    try:
        real_root = root.resolve(strict=True)
    except OSError as exc:
        p = _p("discovery.root_missing", (str(root),), f"klasör bulunamadı: {exc}", f"folder not found: {exc}")
        return Discovery(root, (), (p,), ())
    if not real_root.is_dir():
        p = _p("discovery.root_not_dir", (str(root),), "verilen yol bir klasör değil", "the path is not a folder")
        return Discovery(root, (), (p,), ())

    def rel_of(path: Path) -> str:
        return path.relative_to(root).as_posix()

    def walk(directory: Path) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            rel = rel_of(directory) if directory != root else "."
            problems.append(
                _p("file.unreadable", (rel,), f"klasör okunamadı: {exc.strerror or exc}",
                   f"cannot read the folder: {exc.strerror or exc}")
            )
            return
        for entry in entries:
            path = Path(entry.path)
            rel = rel_of(path)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                problems.append(_p("file.unreadable", (rel,), f"okunamadı: {exc.strerror or exc}",
                                   f"cannot stat: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    problems.append(_p("discovery.broken_link", (rel,), "bağlantı (symlink) bozuk veya döngülü",
                                       "broken or looping symbolic link", Severity.WARNING))
                    continue
                if not target.is_relative_to(real_root):
                    problems.append(
                        _p(
                            "discovery.link_outside_root",
                            (rel,),
                            "bağlantı (symlink) taranan klasörün dışını gösteriyor; izlenmedi",
                            "symbolic link points outside the scanned folder; not followed",
                        )
                    )
                    continue
                if target.is_dir():
                    # Inside the root the target is scanned anyway; following could loop.
                    continue
                try:
                    st = target.stat()
                except OSError as exc:
                    problems.append(_p("file.unreadable", (rel,), f"okunamadı: {exc}", f"cannot stat: {exc}"))
                    continue
            if stat.S_ISDIR(st.st_mode):
                walk(path)
                continue
            fname = entry.name
            try:
                name = parse_name(fname)
            except InvalidFileName as exc:
                if looks_like_edefter_name(fname):
                    problems.append(
                        Problem(
                            "name.invalid",
                            (rel,),
                            f"geçersiz e-Defter dosya adı ({exc.field}): {exc.message_tr}",
                            f"invalid e-Defter file name ({exc.field}): {exc.message_en}",
                            Severity.ERROR,
                            (("field", exc.field),),
                        )
                    )
                else:
                    ignored.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(
                    _p(
                        "file.not_regular",
                        (rel,),
                        "e-Defter adlı bu öğe normal bir dosya değil (FIFO, soket veya aygıt); açılmadı",
                        "this entry has an e-Defter name but is not a regular file (FIFO, socket or device); not opened",
                    )
                )
                continue
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
                os.close(fd)
            except OSError as exc:
                problems.append(
                    _p("file.unreadable", (rel,), f"dosya okunamıyor: {exc.strerror or exc}",
                       f"cannot read the file: {exc.strerror or exc}")
                )
                continue
            member = None
            if name.ext == "zip":
                member, zproblems = inspect_zip(path, rel, name, limits)
                problems.extend(zproblems)
                if member is None:
                    continue
            elif st.st_size > limits.max_file_bytes:
                problems.append(
                    _p("xml.too_large", (rel,), f"dosya {limits.max_file_bytes} bayt sınırından büyük",
                       f"the file is larger than the limit of {limits.max_file_bytes} bytes")
                )
                continue
            candidates.append(FoundFile(path, rel, name, name.ext, st.st_size, member))

    walk(root)

    # The same logical file found more than once: identical XML bytes -> one file;
    # different bytes -> a reported conflict (the first copy stays, the set is flagged).
    by_key: dict[tuple[object, ...], list[FoundFile]] = defaultdict(list)
    for f in candidates:
        by_key[f.name.logical_key].append(f)
    files: list[FoundFile] = []
    for group in by_key.values():
        group.sort(key=lambda f: (f.container != "xml", f.rel_path))
        if len(group) > 1:
            try:
                digests = {f.content_sha256 for f in group}
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append(_p("file.unreadable", tuple(f.rel_path for f in group),
                                   f"kopyalar karşılaştırılamadı: {exc}", f"cannot compare the copies: {exc}"))
                digests = {"?", "??"}
            if len(digests) > 1:
                problems.append(
                    _p(
                        "discovery.conflicting_copies",
                        tuple(f.rel_path for f in group),
                        f"aynı dosya ({group[0].name.stem}) birden fazla yerde farklı içerikle var; "
                        f"hangisinin doğru olduğu belirlenemez",
                        f"the same file ({group[0].name.stem}) exists in several places with different content; "
                        f"which one is right cannot be decided",
                    )
                )
        files.append(group[0])
    files.sort(key=lambda f: f.rel_path)
    if not files:
        problems.append(
            _p(
                "discovery.no_files",
                (".",),
                "klasörde e-Defter dosyası bulunamadı",
                "no e-Defter files found in the folder",
            )
        )
    by_name = {f.name: f for f in files}
    sets = assess(by_name)
    return Discovery(root, tuple(files), tuple(problems), sets, tuple(ignored), by_name)
