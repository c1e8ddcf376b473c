"""Deterministic per-file zips and the SHA-256 manifest of a month.

Each e-Defter file is sent as its own zip with the same stem (``X.xml`` -> ``X.zip``
holding exactly ``X.xml``). The zip is written by hand rather than with ``zipfile`` so
that (1) every byte is fixed by the input alone -- DOS time 1980-01-01 00:00, Unix mode
0644, no extra fields, no comment, fixed "version made by" -- and (2) deflate can run on
ISA-L (``isal.isal_zlib``, several times faster than zlib) with a 1 MiB streaming window:
a 200 MB part never sits in memory. Same bytes in -> byte-identical zip out, so a re-run
produces the same SHA-256 and the integrator sees an identical (idempotent) upload.

The signed XML is treated as opaque bytes: never re-encoded or re-indented, since that
would break its signature.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from include.edefter.naming import EDefterName, parse_name

try:  # zlib-ng: the same deflate format, ~1.5-2.5x zlib's speed at a slightly better ratio.
    from zlib_ng import zlib_ng as _deflate_lib

    DEFLATE_LIB = f"zlib-ng-{_deflate_lib.ZLIBNG_VERSION}"
except ImportError:  # pragma: no cover - exercised only where zlib-ng is absent
    _deflate_lib = zlib  # type: ignore[assignment]
    DEFLATE_LIB = f"zlib-{zlib.ZLIB_VERSION}"
HAVE_ISAL = False  # kept for the bench's report: ISA-L (levels 0-3) made zips 1.75x zip -6's

__all__ = [
    "DEFAULT_LEVEL",
    "HAVE_ISAL",
    "PACKER_VERSION",
    "Manifest",
    "PackagedFile",
    "PackagingError",
    "atomic_write_bytes",
    "package_file",
    "package_files",
    "sha256_file",
]

CHUNK = 1024 * 1024
# Deflated in independent 1 MiB blocks on several threads, each primed with the previous block's
# last 32 KiB (pigz's scheme): standard deflate, within ~0.3 % of one stream, and a function of the
# input bytes alone (block size fixed, not the thread count). The archive keeps these bytes for ten
# years, so the level is chosen per kind (measured on generated 200 MB parts, bench B1): a journal
# (Y) at zlib-ng level 6 is 0.99x `zip -6`'s size; a kebir (K) at 6 is 1.08x (its repeats lie farther
# back than level 6's lazy matching looks) and 0.92x at 9, which costs it ~1.5x the time; berats and
# DR are small. Level 9 everywhere: 0.90x the size but under 3x zip -6's speed; 6 everywhere: 1.03x.
DEFAULT_LEVEL = 6
LEVEL_BY_CODE = {"Y": 6}  # every other kind: 9
DEFAULT_WORKERS = 2
_WINDOW = 32 * 1024
PACKER_VERSION = f"edefter-zip/2 {DEFLATE_LIB} level-Y6-other9 block-{CHUNK}"


def level_for(name: EDefterName) -> int:
    return LEVEL_BY_CODE.get(name.code, 9)


_DOS_TIME = 0  # 00:00:00
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_EXTERNAL_ATTR = 0o100644 << 16  # regular file, rw-r--r--
_VERSION_MADE_BY = (3 << 8) | 20  # Unix, spec 2.0
_VERSION_NEEDED = 20
_FLAGS = 0x0800  # UTF-8 names (names are ASCII anyway; fixed for determinism)
_MAX32 = 0xFFFFFFFF


class PackagingError(Exception):
    """A file that cannot be packaged; names the file and says why (TR + EN)."""

    def __init__(self, file: str, message_en: str, message_tr: str) -> None:
        self.file = file
        self.message_en = message_en
        self.message_tr = message_tr
        super().__init__(f"{file}: {message_en} / {message_tr}")


@dataclass(frozen=True)
class PackagedFile:
    """One packaged e-Defter file: the XML it holds and the zip that carries it."""

    name: str  # the XML name stored inside the zip, e.g. 1234567801-201909-Y-000000.xml
    code: str  # Y, K, YB, KB, GIB-YB, GIB-KB, DR
    part: int
    xml_size: int
    xml_sha256: str
    zip_name: str
    zip_size: int
    zip_sha256: str
    zip_path: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """The month's SHA-256 manifest, in upload order."""

    files: tuple[PackagedFile, ...]
    packer: str = PACKER_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {"packer": self.packer, "files": [f.to_dict() for f in self.files]},
            ensure_ascii=False,
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(tuple(PackagedFile(**f) for f in data["files"]), data.get("packer", PACKER_VERSION))

    def write(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_json().encode("utf-8"))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.from_json(path.read_text(encoding="utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, fsync, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_source(src: Path, name: EDefterName) -> tuple[IO[bytes], object | None]:
    """The XML byte stream of ``src``; a source .zip must hold exactly one member ``<stem>.xml``."""
    if name.ext == "xml":
        return open(src, "rb"), None
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackagingError(
            src.name, f"not a readable zip: {exc}", f"okunabilir bir zip değil: {exc}"
        ) from exc
    members = [i for i in zf.infolist() if not i.is_dir()]
    expected = f"{name.stem}.xml"
    if len(members) != 1 or members[0].filename.rsplit("/", 1)[-1] != expected:
        zf.close()
        found = ", ".join(i.filename for i in members) or "-"
        raise PackagingError(
            src.name,
            f"a source zip must hold exactly {expected}, found: {found}",
            f"kaynak zip yalnızca {expected} içermeli, bulunan: {found}",
        )
    return zf.open(members[0]), zf


def _local_header(name: bytes, crc: int, csize: int, usize: int) -> bytes:
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            _VERSION_NEEDED,
            _FLAGS,
            zipfile.ZIP_DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            csize,
            usize,
            len(name),
            0,
        )
        + name
    )


def _central_directory(name: bytes, crc: int, csize: int, usize: int, offset: int) -> bytes:
    """Central directory entry + end record for the single member that starts the file."""
    entry = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            _VERSION_MADE_BY,
            _VERSION_NEEDED,
            _FLAGS,
            zipfile.ZIP_DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            csize,
            usize,
            len(name),
            0,
            0,
            0,
            0,
            _EXTERNAL_ATTR,
            0,
        )
        + name
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(entry), offset, 0)
    return entry + end


def _chunks(stream: IO[bytes], chunk: int) -> Iterator[bytes]:
    """Exactly ``chunk``-sized blocks (the last may be shorter).

    ISA-L's deflate output depends on how the input is split, so the split must depend on
    the input bytes alone, not on how many bytes a particular read() happened to return.
    """
    buf = bytearray()
    while True:
        block = stream.read(chunk - len(buf))
        if not block:
            break
        if not buf and len(block) == chunk:
            yield block  # the common case for regular files: no copy
            continue
        buf += block
        if len(buf) == chunk:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def _deflate_block(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """One block of a raw deflate stream: primed with the previous block's tail, ended with a
    sync flush (byte-aligned, no final bit) unless it is the last one."""
    c = (
        _deflate_lib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
        if dictionary
        else _deflate_lib.compressobj(level, zlib.DEFLATED, -15, 9)
    )
    return c.compress(block) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def package_file(
    src: Path,
    dest_dir: Path,
    *,
    forbidden_root: Path | None = None,
    level: int | None = None,
    chunk: int = CHUNK,
    workers: int = DEFAULT_WORKERS,
) -> PackagedFile:
    """Zip one e-Defter file deterministically into ``dest_dir/<stem>.zip``.

    The output is a function of (input bytes, ``level`` — by default per kind, ``level_for`` —,
    ``chunk``, the deflate library);
    the defaults are fixed and recorded as ``PACKER_VERSION`` in the manifest. Comparisons
    with the archive therefore use the XML's SHA-256, which no packer change can alter.

    ``forbidden_root`` is the e-Defter folder: writing anywhere inside it is refused, the
    folder belongs to the ledger software and is only ever read.
    """
    src = Path(src)
    dest_dir = Path(dest_dir)
    name = parse_name(src.name)
    level = level_for(name) if level is None else level
    if forbidden_root is not None and _is_within(dest_dir, forbidden_root):
        raise PackagingError(
            src.name,
            f"refusing to write zips inside the e-Defter folder {forbidden_root}",
            f"e-Defter klasörüne ({forbidden_root}) yazılmaz",
        )
    stored = f"{name.stem}.xml".encode("ascii")
    zip_name = f"{name.stem}.zip"
    dest_dir.mkdir(parents=True, exist_ok=True)
    out_path = dest_dir / zip_name
    xml_hash = hashlib.sha256()
    crc = 0
    usize = 0
    csize = 0
    stream, holder = _open_source(src, name)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{zip_name}.", suffix=".tmp")
    # Blocks deflate on `workers` threads (zlib releases the GIL); this thread hashes and CRCs
    # the same blocks in order and writes the deflated blocks in order. In flight: a few MiB.
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="edefter-deflate")
    in_flight: deque[Future[bytes]] = deque()
    depth = max(2, 2 * workers)
    try:
        with os.fdopen(fd, "w+b") as out, stream:
            out.write(_local_header(stored, 0, 0, 0))

            def drain(keep: int) -> None:
                nonlocal csize
                while len(in_flight) > keep:
                    data = in_flight.popleft().result()
                    out.write(data)
                    csize += len(data)

            prev_tail = b""
            pending: bytes | None = None
            for block in _chunks(stream, chunk):
                if pending is not None:
                    in_flight.append(pool.submit(_deflate_block, pending, prev_tail, level, False))
                    prev_tail = pending[-_WINDOW:]
                    drain(depth)
                xml_hash.update(block)
                crc = _deflate_lib.crc32(block, crc)
                usize += len(block)
                pending = block
            in_flight.append(pool.submit(_deflate_block, pending or b"", prev_tail, level, True))
            drain(0)
            if usize > _MAX32 or csize > _MAX32:
                raise PackagingError(
                    src.name,
                    "files over 4 GiB are not supported (no ZIP64)",
                    "4 GiB üzeri dosya desteklenmiyor (ZIP64 yok)",
                )
            out.write(_central_directory(stored, crc, csize, usize, out.tell()))
            out.seek(0)
            out.write(_local_header(stored, crc, csize, usize))
            out.flush()
            os.fsync(out.fileno())
            # Hash the finished zip from the start (it is ~10x smaller than the XML, read from page cache).
            out.seek(0)
            zip_hash = hashlib.sha256()
            for block in _chunks(out, chunk):
                zip_hash.update(block)
            zip_size = out.tell()
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if holder is not None:
            holder.close()  # type: ignore[attr-defined]
    return PackagedFile(
        name=stored.decode("ascii"),
        code=name.code,
        part=name.part,
        xml_size=usize,
        xml_sha256=xml_hash.hexdigest(),
        zip_name=zip_name,
        zip_size=zip_size,
        zip_sha256=zip_hash.hexdigest(),
        zip_path=str(out_path),
    )


def package_files(
    sources: Iterable[Path],
    dest_dir: Path,
    *,
    forbidden_root: Path | None = None,
    level: int | None = None,
) -> Manifest:
    """Package files in the given order (callers pass the upload order) and return the manifest."""
    packaged = [package_file(Path(s), dest_dir, forbidden_root=forbidden_root, level=level) for s in sources]
    return Manifest(tuple(packaged))
