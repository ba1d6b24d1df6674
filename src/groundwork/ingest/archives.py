"""Zip-based document formats (DOCX today; PPTX, XLSX, EPUB tomorrow) checked before a parser opens them.

A parser that trusts a zip's headers can be made to inflate gigabytes out of a few megabytes (a zip
bomb) or to build an XML tree of tens of millions of nodes. ``check_package`` reads the archive
itself, streaming, and enforces every limit while it reads, before any parser sees the bytes:

1. The central directory (APPNOTE.TXT 4.3.12): at most ``max_members`` entries (counted before
   ``zipfile`` builds one object per entry), declared total size, declared ratio per member, only the
   stored and deflated methods (the only ones the OPC ZIP mapping of ECMA-376 Part 2 and EPUB OCF 3
   allow; ``zipfile`` inflates bzip2 and LZMA members without an output bound), no encrypted members.
2. Every member's data, inflated here 64 KiB at a time: the real size, not the declared one, counts
   against ``max_unzipped_bytes`` and the ratio. ``zipfile`` truncates a member to its declared size,
   but ``ZipFile.read()`` (what python-docx calls) first inflates the whole stream in one call, so a
   header that under-states the size would cost the real size in memory; such a member is refused
   as soon as it inflates past its declared size.
3. No member is itself an archive (by its first bytes, not its name), except under ``embedded_dirs``,
   where a format keeps embedded packages as opaque bytes (DOCX charts: ``word/embeddings/*.xlsx``).
4. The XML members together hold at most ``max_xml_nodes`` elements, attributes and text nodes,
   counted by a parser that builds no tree: a DOM parser's memory grows with nodes, not bytes
   (measured: python-docx holds 130-230 bytes per node, so 100 MB of ``<a/>`` would cost over 3 GB).

Every refusal is a LoaderError that names the member, the limit and the setting.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from groundwork.config import IngestSettings
from groundwork.errors import LoaderError

_CHUNK = 64 * 1024  # bytes inflated per step: the most one member costs in memory here
RATIO_MIN_BYTES = 1024 * 1024  # members smaller than this are not ratio-checked (small XML parts compress well)
_CENTRAL_DIR_SIGNATURE = b"PK\x01\x02"  # APPNOTE.TXT 4.3.12: the first bytes of every central-directory entry
_LOCAL_HEADER = struct.Struct(zipfile.structFileHeader)  # APPNOTE.TXT 4.3.7: the local file header (30 bytes)
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_MAGIC_BYTES = 8  # enough for every signature below
# Magic numbers of archive and compressed formats (first bytes of the file).
_ARCHIVE_MAGIC = {
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"\x28\xb5\x2f\xfd": "zstd",
}


_DEFAULT = IngestSettings.model_fields  # the defaults live with the settings


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits on one zip-based file (``ingest.max_unzipped_mb``, ``max_zip_ratio``, ``max_zip_members``,
    ``max_xml_nodes``; defaults: theirs). ``max_unzipped_bytes`` in bytes; ``max_ratio`` is uncompressed
    / compressed bytes per member (members under RATIO_MIN_BYTES are not checked)."""

    max_unzipped_bytes: int = int(_DEFAULT["max_unzipped_mb"].default * 1e6)
    max_ratio: float = _DEFAULT["max_zip_ratio"].default
    max_members: int = _DEFAULT["max_zip_members"].default
    max_xml_nodes: int = _DEFAULT["max_xml_nodes"].default


def check_package(
    name: str,
    raw: bytes,
    limits: ArchiveLimits = ArchiveLimits(),
    embedded_dirs: tuple[str, ...] = (),
    kind: str = "zip archive",
    allow_dtd: bool = True,
) -> None:
    """Refuse a zip-based document that would cost a parser more than ``limits`` allow.

    ``name`` names the file in errors; ``raw`` is the whole file (already bounded by ingest.max_file_mb);
    ``embedded_dirs`` are member folders (``"word/embeddings/"``) where nested archives are allowed;
    ``kind`` names the format in errors ("DOCX"); ``allow_dtd`` False refuses an XML member with a
    document type declaration (OOXML parts never have one; it is how entity expansion gets in).
    Memory used: the central directory plus about 64 KiB, whatever the archive claims.
    Raises LoaderError naming the member, the limit and its setting.
    """
    with _open_directory(name, raw, limits, kind) as archive:
        members = archive.infolist()
    _check_directory(name, members, limits)
    nodes = _XmlNodeCount(name, limits.max_xml_nodes, allow_dtd)
    total = 0
    for info in members:
        head = b""
        nodes.start(info.filename)
        for chunk in _inflate(name, raw, info, limits):
            total += len(chunk)
            if total > limits.max_unzipped_bytes:
                raise LoaderError(name, _too_big(limits))
            if len(head) < _MAGIC_BYTES:
                head += chunk[:_MAGIC_BYTES]
                _check_nested(name, info.filename, head, embedded_dirs)
            nodes.feed(chunk)
        nodes.end()


def _too_big(limits: ArchiveLimits) -> str:
    return (
        f"the archive inflates to more than {limits.max_unzipped_bytes / 1e6:,.0f} MB, over the limit "
        "(ingest.max_unzipped_mb): a zip bomb, or a document too large to index; raise the limit only for a "
        "file you trust"
    )


def _open_directory(name: str, raw: bytes, limits: ArchiveLimits, kind: str) -> zipfile.ZipFile:
    """The archive's central directory, read by zipfile once the entry count is known to be within limits."""
    # zipfile builds one ZipInfo per entry while it opens the archive; every entry starts with this
    # signature, so counting it (an upper bound) refuses a million-entry directory before that work.
    if raw.count(_CENTRAL_DIR_SIGNATURE) > limits.max_members:
        raise LoaderError(name, _too_many(limits))
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise LoaderError(name, f"not a readable {kind} ({exc}); the file may be corrupt or truncated") from None
    if len(archive.infolist()) > limits.max_members:
        archive.close()
        raise LoaderError(name, _too_many(limits))
    return archive


def _too_many(limits: ArchiveLimits) -> str:
    return (
        f"the archive has more than {limits.max_members:,} members, over the limit (ingest.max_zip_members); "
        "a document with that many parts is crafted, or needs the limit raised"
    )


def _check_directory(name: str, members: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """What the central directory declares: refused before any byte is inflated."""
    if sum(i.file_size for i in members) > limits.max_unzipped_bytes:
        raise LoaderError(name, _too_big(limits))
    for info in members:
        if info.flag_bits & 0x1:
            raise LoaderError(name, f"member '{info.filename}' is encrypted; remove the password and try again")
        if info.compress_type not in _METHODS:
            raise LoaderError(
                name,
                f"member '{info.filename}' uses compression method {info.compress_type}; only stored and "
                "deflated members are read (re-save the file)",
            )
        _check_ratio(name, info.filename, info.file_size, info.compress_size, limits)


def _check_ratio(name: str, member: str, size: int, compressed: int, limits: ArchiveLimits) -> None:
    ratio = size / max(compressed, 1)
    if size >= RATIO_MIN_BYTES and ratio > limits.max_ratio:
        raise LoaderError(
            name,
            f"member '{member}' is compressed {ratio:,.0f}:1, over the {limits.max_ratio:,.0f}:1 limit "
            "(ingest.max_zip_ratio): a zip bomb; raise the limit only for a file you trust",
        )


def _check_nested(name: str, member: str, head: bytes, embedded_dirs: tuple[str, ...]) -> None:
    kind = next((k for magic, k in _ARCHIVE_MAGIC.items() if head.startswith(magic)), None)
    if kind and not member.startswith(embedded_dirs):
        raise LoaderError(
            name, f"member '{member}' is itself an archive ({kind}); archives inside documents are refused"
        )


def _inflate(name: str, raw: bytes, info: zipfile.ZipInfo, limits: ArchiveLimits) -> Iterator[bytes]:
    """The member's bytes, 64 KiB at a time, inflated here so that the real size is what counts.

    Raises LoaderError when the member inflates past its declared size or the ratio limit, or when its
    data is truncated or differs from its header (size, CRC-32).
    """
    start = _data_offset(name, raw, info)
    data = memoryview(raw)[start : start + info.compress_size]
    if len(data) < info.compress_size:
        raise LoaderError(name, f"member '{info.filename}' is truncated; the file is corrupt")
    chunks = _deflated(name, info, data) if info.compress_type == zipfile.ZIP_DEFLATED else _stored(data)
    size = crc = 0
    for chunk in chunks:
        size += len(chunk)
        if size > info.file_size:
            raise LoaderError(
                name,
                f"member '{info.filename}' inflates to more than its declared {info.file_size:,} bytes: "
                "a crafted archive (its header under-states the size)",
            )
        _check_ratio(name, info.filename, size, info.compress_size, limits)
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if size != info.file_size or crc != info.CRC:
        raise LoaderError(name, f"member '{info.filename}' is corrupt (its size or CRC-32 differs from its header)")


def _stored(data: memoryview) -> Iterator[bytes]:
    for pos in range(0, len(data), _CHUNK):
        yield bytes(data[pos : pos + _CHUNK])


def _deflated(name: str, info: zipfile.ZipInfo, data: memoryview) -> Iterator[bytes]:
    """Raw deflate (RFC 1951, as zip stores it), at most 64 KiB of output per step."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for pos in range(0, len(data), _CHUNK):
        piece: bytes | memoryview = data[pos : pos + _CHUNK]
        while True:
            try:
                out = inflater.decompress(piece, _CHUNK)
            except zlib.error as exc:
                raise LoaderError(name, f"member '{info.filename}' is corrupt ({exc})") from None
            if out:
                yield out
            piece = inflater.unconsumed_tail
            # A full 64 KiB step may leave output inside zlib even with no input left: ask again.
            if inflater.eof or (not piece and len(out) < _CHUNK):
                break
        if inflater.eof:
            return


def _data_offset(name: str, raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where the member's compressed bytes start: after its local header, name and extra field."""
    header = raw[info.header_offset : info.header_offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or header[:4] != zipfile.stringFileHeader:
        raise LoaderError(name, f"member '{info.filename}' has no valid local header; the file is corrupt")
    *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


class _NodeTarget:
    """An lxml parser target ("The target parser interface"): counts nodes, builds nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.dtd_seen = False

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        self.dtd_seen = True

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.count += 1 + len(attrib)

    def data(self, text: str) -> None:
        self.count += 1  # a text node may arrive in pieces: this counts at least as many as there are

    def close(self) -> int:
        return self.count


class _XmlNodeCount:
    """Elements, attributes and text nodes of every XML member, counted by libxml2 (the parser python-docx
    uses) calling back into a target that builds no tree. A member that is not XML (an image) stops its
    parser at the first bytes. Entities are not resolved; no DTD or network resource is loaded. Raises
    LoaderError once the count passes ``limit`` (checked after each 64 KiB chunk)."""

    def __init__(self, name: str, limit: int, allow_dtd: bool = True) -> None:
        self.name, self.limit, self.allow_dtd = name, limit, allow_dtd
        self._target = _NodeTarget()
        self._parser: etree.XMLParser | None = None
        self._member = ""

    def start(self, member: str = "") -> None:
        self._member = member
        self._parser = etree.XMLParser(
            target=self._target, resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
        )

    def feed(self, chunk: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError:
            self._parser = None  # not XML, or XML that a parser rejects at this point: nothing more is built
        if self._target.dtd_seen and not self.allow_dtd:
            raise LoaderError(
                self.name,
                f"member '{self._member}' has a document type declaration (DTD), which this format never has: "
                "a crafted file (entity expansion); re-save it",
            )
        if self._target.count > self.limit:
            raise LoaderError(
                self.name,
                f"the XML parts hold more than {self.limit:,} elements, attributes and text nodes, over the "
                "limit (ingest.max_xml_nodes): parsing them would take gigabytes; split the document",
            )

    def end(self) -> None:
        self._parser = None
