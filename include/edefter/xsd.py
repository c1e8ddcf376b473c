"""Validation of e-Defter files against GİB's XSD package, with bounded memory.

GİB's package has one entry schema, ``edefter.xsd`` (targetNamespace
``http://www.edefter.gov.tr``), declaring the three roots: ``edefter:defter``
(Y and K ledgers), ``edefter:berat`` (YB, KB and the GİB berats) and
``edefter:defterraporu`` (DR). It imports XBRL 2003, XBRL GL 2006-10-25, XMLDSig
and XAdES from the same folder; the XBRL GL schemas import the XBRL instance
schema by ``http://www.xbrl.org/2003/`` URL, which is mapped to the local copy.
Nothing is ever fetched over the network: a schema that needs it is refused.

How a file is validated (measured with bench/bench_xsd.py):

* up to ``TREE_MAX_BYTES`` (berats, DR, small ledgers): the bytes are parsed into
  one lxml tree and validated with the cached ``etree.XMLSchema``; every error
  carries its line;
* larger files (ledger parts up to ~200 MB) stream through libxml2's reader
  validator, ``xmllint --stream --nonet --schema edefter.xsd -`` (a subprocess
  fed from the opener; its own RSS stays ~15 MB whatever the file size), and the
  first ``max_errors`` errors are kept with their lines, the rest only counted.
  lxml cannot give lines here: with the schema plugged into the parser
  (``XMLParser(schema=)``/``iterparse(schema=)``) libxml2 reports line 0, and a
  ``target`` parser silently skips validation;
* without xmllint on PATH, the same large file goes through lxml's
  ``iterparse(schema=...)`` with every element freed once ended (bounded
  memory too): valid/invalid is exact, but lines are unknown and parsing stops
  at the first failing chunk, so the count is a lower bound ("at least").

The result is a ``SchemaResult``; ``schema_problems`` turns it into Problems
(``schema.invalid``, ``schema.skipped``).
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from include.edefter.problems import Problem, Severity
from include.edefter.settings import SCHEMA_DIR_ENV

__all__ = [
    "MAX_ERRORS",
    "SchemaError",
    "SchemaResult",
    "SchemaUnavailable",
    "XsdValidator",
    "load_validator",
    "schema_problems",
    "skipped_problem",
]

log = logging.getLogger(__name__)

EDEFTER_NS = "http://www.edefter.gov.tr"
_XBRL_2003 = "http://www.xbrl.org/2003/"
MAX_ERRORS = 20  # errors kept (with lines) per file; the rest are counted
TREE_MAX_BYTES = 4 * 1024 * 1024  # files up to this size are validated as one tree (exact lines)
_CHUNK = 1024 * 1024

Opener = Callable[[], BinaryIO]


class SchemaUnavailable(Exception):
    """The schema directory is missing, unreadable, not GİB's, or needs the network."""


@dataclass(frozen=True)
class SchemaError:
    line: int | None  # None: not known (lxml streaming fallback)
    message: str

    def render(self) -> str:
        return f"{self.line if self.line is not None else '?'}: {self.message}"


@dataclass(frozen=True)
class SchemaResult:
    name: str
    valid: bool
    errors: tuple[SchemaError, ...] = ()
    error_count: int = 0
    count_is_lower_bound: bool = False
    method: str = ""  # tree | xmllint-stream | lxml-stream
    extra: dict[str, str] = field(default_factory=dict, compare=False)


class _LocalXbrlResolver(etree.Resolver):
    def __init__(self, schema_dir: Path) -> None:
        super().__init__()
        self._dir = schema_dir

    def resolve(self, system_url: str, public_id: str, context: object):  # type: ignore[no-untyped-def]
        if system_url.startswith(_XBRL_2003):
            local = self._dir / system_url.rsplit("/", 1)[1]
            if local.is_file():
                return self.resolve_filename(str(local), context)
        if system_url.startswith(("http://", "https://", "ftp://")):
            raise SchemaUnavailable(f"schema would fetch {system_url} over the network (refused)")
        return None


_LINE_RE = re.compile(r"^(?:.*?):(\d+): (?:Schemas validity error|parser error|validity error|namespace error)"
                      r" ?: ?(.*)$")


class XsdValidator:
    """GİB's compiled schema plus the streaming validator; build with ``load_validator``."""

    def __init__(self, schema_dir: Path, schema: etree.XMLSchema, xmllint: str | None) -> None:
        self.schema_dir = schema_dir
        self.entry = schema_dir / "edefter.xsd"
        self.schema = schema
        self.xmllint = xmllint
        self._lock = threading.Lock()  # one lxml XMLSchema is not safe to share across threads

    # ------------------------------------------------------------------ public
    def validate(self, opener: Opener, *, name: str, max_errors: int = MAX_ERRORS,
                 tree_max_bytes: int = TREE_MAX_BYTES, force_stream: str | None = None) -> SchemaResult:
        """Validate one file. ``force_stream``: ``"xmllint"`` or ``"lxml"`` (tests, bench)."""
        with opener() as fh:
            head = fh.read(tree_max_bytes + 1)
            if len(head) <= tree_max_bytes and force_stream is None:
                return self._tree(head, name, max_errors)
            if force_stream == "lxml" or (force_stream is None and self.xmllint is None):
                return self._lxml_stream(head, fh, name, max_errors)
            return self._xmllint_stream(head, fh, name, max_errors)

    # ------------------------------------------------------------------ small files: one tree
    def _tree(self, data: bytes, name: str, max_errors: int) -> SchemaResult:
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)
        try:
            doc = etree.parse(io.BytesIO(data), parser)
        except etree.XMLSyntaxError as exc:
            return SchemaResult(name, False, (SchemaError(exc.lineno, str(exc.msg)),), 1, False, "tree")
        with self._lock:
            ok = self.schema.validate(doc)
            entries = list(self.schema.error_log) if not ok else []
        errs = tuple(SchemaError(e.line, e.message) for e in entries[:max_errors])
        return SchemaResult(name, ok, errs, len(entries), False, "tree")

    # ------------------------------------------------------------------ large files: xmllint --stream
    def _xmllint_stream(self, head: bytes, fh: BinaryIO, name: str, max_errors: int) -> SchemaResult:
        assert self.xmllint is not None
        cmd = [self.xmllint, "--noout", "--stream", "--nonet", "--schema", str(self.entry), "-"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "LC_ALL": "C"})
        assert proc.stdin is not None and proc.stderr is not None
        feed_error: list[BaseException] = []

        def feed() -> None:
            try:
                chunk = head
                while chunk:
                    proc.stdin.write(chunk)  # type: ignore[union-attr]
                    chunk = fh.read(_CHUNK)
            except BrokenPipeError:
                pass  # xmllint stopped early (e.g. a parser error); its stderr says why
            except BaseException as exc:  # noqa: BLE001 - reported below
                feed_error.append(exc)
            finally:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]
                except OSError:
                    pass

        t = threading.Thread(target=feed, name="xsd-feed", daemon=True)
        t.start()
        errors: list[SchemaError] = []
        count = 0
        compile_failed = False
        verdict_valid = False
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if "failed to compile" in line:
                compile_failed = True
                continue
            if line.endswith(" validates"):
                verdict_valid = True
                continue
            m = _LINE_RE.match(line)
            if m:
                count += 1
                if len(errors) < max_errors:
                    errors.append(SchemaError(int(m.group(1)), m.group(2).strip()))
        rc = proc.wait()
        t.join()
        if feed_error:
            raise feed_error[0]
        if compile_failed:
            raise SchemaUnavailable(f"xmllint could not compile {self.entry}")
        if rc == 0 and verdict_valid and count == 0:
            return SchemaResult(name, True, (), 0, False, "xmllint-stream")
        if count == 0:  # failed without a line-numbered error (e.g. truncated input)
            errors.append(SchemaError(None, f"xmllint exited with code {rc}"))
            count = 1
        return SchemaResult(name, False, tuple(errors), count, False, "xmllint-stream")

    # ------------------------------------------------------------------ large files, no xmllint: lxml
    def _lxml_stream(self, head: bytes, fh: BinaryIO, name: str, max_errors: int) -> SchemaResult:
        class _Chain(io.RawIOBase):
            def __init__(self) -> None:
                self._head: bytes | None = head

            def readable(self) -> bool:
                return True

            def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
                if self._head:
                    n = min(len(b), len(self._head))
                    b[:n] = self._head[:n]
                    self._head = self._head[n:]
                    return n
                data = fh.read(len(b))
                b[: len(data)] = data
                return len(data)

        with self._lock:
            try:
                for _ev, el in etree.iterparse(io.BufferedReader(_Chain(), _CHUNK), events=("end",),
                                               schema=self.schema, no_network=True, resolve_entities=False,
                                               load_dtd=False, huge_tree=False):
                    el.clear(keep_tail=False)
                    parent = el.getparent()
                    if parent is not None:
                        while el.getprevious() is not None:
                            del parent[0]
            except etree.XMLSyntaxError as exc:
                entries = [e for e in exc.error_log if e.domain_name in ("SCHEMASV", "PARSER", "NAMESPACE")]
                if not entries:
                    entries_msgs = [SchemaError(None, str(exc))]
                else:
                    entries_msgs = [SchemaError(e.line or None, e.message) for e in entries]
                return SchemaResult(name, False, tuple(entries_msgs[:max_errors]), len(entries_msgs), True,
                                    "lxml-stream")
        return SchemaResult(name, True, (), 0, False, "lxml-stream")


_CACHE: dict[tuple[str, float], XsdValidator] = {}
_CACHE_LOCK = threading.Lock()


def _check_is_gib(entry: Path) -> None:
    try:
        head = entry.read_bytes()[:8192]
    except OSError as exc:
        raise SchemaUnavailable(f"cannot read {entry}: {exc}") from exc
    if EDEFTER_NS.encode() not in head or b'name="defter"' not in head or b'name="berat"' not in head:
        raise SchemaUnavailable(f"{entry} is not GİB's e-Defter schema (no edefter:defter/berat declarations)")


def load_validator(schema_dir: Path | str | None = None, *, use_xmllint: bool = True) -> XsdValidator:
    """The validator for ``schema_dir`` (default: env EDEFTER_SCHEMA_DIR); cached per directory.

    Raises ``SchemaUnavailable`` when the directory is unset, missing, unreadable,
    not GİB's package, or would make the schema load anything over the network.
    """
    if schema_dir is None:
        value = os.environ.get(SCHEMA_DIR_ENV, "").strip()
        if not value:
            raise SchemaUnavailable(f"{SCHEMA_DIR_ENV} is not set")
        schema_dir = value
    d = Path(schema_dir).expanduser()
    entry = d / "edefter.xsd"
    if not d.is_dir():
        raise SchemaUnavailable(f"schema directory {d} does not exist")
    if not entry.is_file():
        raise SchemaUnavailable(f"{entry} not found")
    _check_is_gib(entry)
    try:
        key = (str(entry.resolve()), entry.stat().st_mtime)
    except OSError as exc:
        raise SchemaUnavailable(f"cannot read {entry}: {exc}") from exc
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit if use_xmllint else XsdValidator(hit.schema_dir, hit.schema, None)
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        parser.resolvers.add(_LocalXbrlResolver(d))
        try:
            schema = etree.XMLSchema(etree.parse(str(entry), parser))
        except SchemaUnavailable:
            raise
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
            cause = exc.__context__ if isinstance(exc.__context__, SchemaUnavailable) else exc
            raise SchemaUnavailable(f"GİB schema at {d} cannot be loaded: {cause}") from exc
        # Cached with xmllint when the machine has it, whatever this caller asked for: a first
        # caller without xmllint must not take the streaming path away from the later ones.
        v = XsdValidator(d, schema, shutil.which("xmllint"))
        _CACHE[key] = v
        return v if use_xmllint else XsdValidator(d, schema, None)


# ---------------------------------------------------------------------- problems

def schema_problems(result: SchemaResult) -> list[Problem]:
    """``schema.invalid`` (error) with the first errors (line + message) and the count."""
    if result.valid:
        return []
    n = len(result.errors)
    count = f"en az {result.error_count}" if result.count_is_lower_bound else str(result.error_count)
    count_en = f"at least {result.error_count}" if result.count_is_lower_bound else str(result.error_count)
    first = "; ".join(
        (f"satır {e.line}: " if e.line is not None else "") + e.message for e in result.errors[:3]
    )
    first_en = "; ".join((f"line {e.line}: " if e.line is not None else "") + e.message for e in result.errors[:3])
    more = f" (ilk {n} hata ayrıntılarda)" if n > 3 else ""
    more_en = f" (first {n} errors in the details)" if n > 3 else ""
    return [
        Problem(
            "schema.invalid",
            (result.name,),
            f"GİB'in e-Defter şemasına (XSD) uymuyor, {count} hata: {first}{more}",
            f"does not validate against GİB's e-Defter schema (XSD), {count_en} error(s): {first_en}{more_en}",
            details=(
                ("error_count", str(result.error_count)),
                ("error_count_is_lower_bound", "true" if result.count_is_lower_bound else "false"),
                ("first_line", str(result.errors[0].line) if result.errors and result.errors[0].line else ""),
                ("errors", "\n".join(e.render() for e in result.errors)),
                ("method", result.method),
            ),
        )
    ]


def skipped_problem(reason: str, *, required: bool) -> Problem:
    """``schema.skipped``: a warning, or an error when the caller demands schema validation."""
    tr_tail = " (şema doğrulaması zorunlu)" if required else ""
    en_tail = " (schema validation is required)" if required else ""
    return Problem(
        "schema.skipped",
        (),
        f"XSD şema doğrulaması yapılmadı: GİB şema klasörü kullanılamıyor ({reason}){tr_tail}",
        f"XSD schema validation was skipped: no usable GİB schema directory ({reason}){en_tail}",
        severity=Severity.ERROR if required else Severity.WARNING,
        details=(("reason", reason),),
    )
