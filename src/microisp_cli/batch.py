"""The input and output side of a batch: which files to develop and where each goes.

- :func:`collect` turns the inputs (files, folders) into :class:`Job`\\ s;
  :func:`output_is_folder` and :func:`plan_outputs` name their outputs (:func:`safe_name`: no
  name taken from an input can leave the output folder), or an ``-o`` name template
  (:func:`plan_template`); :func:`check_unique_outputs`: no two jobs write one file;
- :func:`printable` escapes what a name may hold (newlines, escape sequences, bytes that are not
  UTF-8) before it is printed: the library's messages about the batch use it too (the CLI's
  handling of signals is in ``cli/signals.py``);
- what may be written, and writing it whole, is :mod:`publish`'s; one file's step and what became
  of it (``FileResult``) are :mod:`batch_step`'s.

:mod:`executors` plans a whole batch from these pieces and develops it. Library code: no click, no
printing.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import string
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from .errors import MicroISPError, OutputError
from .files import not_regular
from .raw import INPUT_EXTENSIONS
from .vocabulary import FORMATS

#: ``-o -``: the photo goes to standard output.
STDOUT = "-"


# --- inputs ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Job:
    source: Path
    output: Path | None = None
    error: str | None = None  # a problem found while collecting (missing path, empty folder)


def collect(inputs: Iterable[Path], recursive: bool = True) -> list[Job]:
    """One job per file: files as given, folders searched for RAW extensions (with their
    sub-folders unless not ``recursive``; regular files only: a FIFO or device found in a folder
    is passed over, one named directly fails)."""
    jobs: list[Job] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in (item.rglob("*") if recursive else item.iterdir())
                           if p.is_file() and p.suffix.lower() in INPUT_EXTENSIONS and not p.name.startswith("."))
            if not found:
                where = "searched recursively" if recursive else "sub-folders not searched"
                jobs.append(Job(item, error=f"no RAW files in this folder ({where})"))
            jobs += [Job(p) for p in found]
            continue
        try:
            problem = not_regular(item.stat().st_mode)
        except OSError as exc:
            problem = "no such file or directory" if exc.errno == errno.ENOENT else exc.strerror
        jobs.append(Job(item, error=problem))
    return jobs


# --- output names ---------------------------------------------------------------------------------
#: Longest output name stem, in UTF-8 bytes (file systems allow 255 for the whole name, and the
#: temporary file of an atomic write adds a prefix and a suffix).
NAME_BYTES = 160


def safe_name(name: str) -> str:
    """``name`` (a file name or folder name taken from an input) made safe to create inside the
    output folder: characters other than letters, digits and ``._-+=,@()[]`` and space become
    ``_`` (bytes that are not UTF-8 too); leading dots, dashes and spaces and trailing dots and
    spaces are dropped (no ``..``, no hidden files, no option-like names); at most
    :data:`NAME_BYTES` bytes. ``""`` when no letter or digit is left: the caller picks a name."""
    name = unicodedata.normalize("NFC", name)
    kept = "".join(c if (c.isalnum() or c in "._-+=,@()[] ") and not 0xD800 <= ord(c) <= 0xDFFF else "_"
                   for c in name)
    kept = kept.lstrip(" .-").rstrip(" .")
    kept = kept.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return kept if any(c.isalnum() for c in kept) else ""


def _relative(path: Path, inputs: tuple[Path, ...]) -> Path:
    """``path`` relative to the input folder it was found in (its name for files given directly).

    Compared after lexical normalisation, so ``in/../../x.dng`` is not "inside" ``in``."""
    for item in inputs:
        if item.is_dir():
            try:
                rel = Path(os.path.normpath(path)).relative_to(os.path.normpath(item))
            except ValueError:
                continue
            if ".." not in rel.parts:
                return rel
    return Path(path.name)


def output_is_folder(output: str, inputs: tuple[Path, ...]) -> bool:
    """Whether ``-o output`` names a folder (True) or the file of a single input (False).

    A folder: ``output`` ends with ``/``, is an existing folder, or there are several inputs or
    an input folder. A file: one input file and ``output`` has an extension. Raises
    :class:`OutputError` for a file name with several inputs, and for a single input with an
    output that has no extension and does not exist (a typo must not become a folder)."""
    if not output:
        raise OutputError("-o is empty: give a file name or a folder")
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        return True
    several = len(inputs) > 1 or any(i.is_dir() for i in inputs)
    if several:
        if path.suffix.lower() in FORMATS:
            raise OutputError(f"-o {printable(output)} is a file name, but there are several inputs: "
                              "give a folder")
        return True
    if not path.suffix:
        raise OutputError(f"-o {printable(output)} has no extension and is not a folder: give a file "
                          f"name such as {printable(output)}.png, or {printable(output)}/ for a folder")
    return False


def plan_outputs(jobs: list[Job], inputs: tuple[Path, ...], output: Path, extension: str,
                 folder: bool | None = None) -> None:
    """Fill ``job.output``: ``output`` itself for a single file (``folder`` False), else files
    inside folder ``output`` named from the inputs (sub-folders mirrored; ``NAME.EXT.png`` where
    two inputs share a stem). ``folder`` None: :func:`output_is_folder`.

    Every name taken from an input goes through :func:`safe_name` (``image`` when nothing is
    left), so no output can land outside ``output``; names still equal (ignoring case) after
    that get ``-2``, ``-3``, ... in input order."""
    output = Path(output)
    todo = [j for j in jobs if j.error is None]
    if folder is None:
        folder = output_is_folder(str(output), inputs)
    if not folder:
        for job in todo:
            job.output = output
        return

    def folder_of(rel: Path) -> Path:
        return Path(*[part for part in map(safe_name, rel.parent.parts) if part])

    targets: dict[Path, list[Job]] = {}
    for job in todo:
        rel = _relative(job.source, inputs)
        stem = safe_name(rel.stem if rel.suffix else rel.name) or "image"
        targets.setdefault(output / folder_of(rel) / (stem + extension), []).append(job)
    taken: set[str] = set()
    for target, group in targets.items():
        for job in group:
            rel = _relative(job.source, inputs)
            wanted = target if len(group) == 1 else \
                output / folder_of(rel) / ((safe_name(rel.name) or "image") + extension)
            job.output = _numbered(wanted, extension, taken)


# --- output name templates -----------------------------------------------------------------------------
#: The fields of an ``-o`` name template, e.g. ``-o 'out/{camera}/{date}/{stem}_dev.jpg'``.
TEMPLATE_FIELDS = {
    "stem": "the input's name without its extension",
    "ext": "the input's extension, without the dot (dng, nef)",
    "camera": "the camera (EXIF Make and Model; a DNG's UniqueCameraModel), else unknown-camera",
    "date": "the capture date, YYYY-MM-DD (EXIF DateTimeOriginal, else the file's date)",
    "folder": "the input's sub-folder inside the input folder searched (empty for a file named)",
}


def is_template(output: str) -> bool:
    """Whether ``-o output`` is a name template (holds a ``{field}``); :class:`OutputError` for
    a field that is not one of :data:`TEMPLATE_FIELDS`, a malformed one, or a darktable-style
    ``$(VARIABLE)``, which would otherwise become part of a file's name."""
    if "$(" in output:
        raise OutputError(f"-o {printable(output)} holds a $(...) variable (darktable's syntax): "
                          f"microisp's name templates are {_fields_list()}, e.g. -o 'out/{{stem}}_dev.jpg'")
    try:
        fields = [field for _, field, spec, _ in string.Formatter().parse(output) if field is not None]
    except ValueError as exc:
        raise OutputError(f"-o {printable(output)}: not a name template ({exc}; write {{{{ and }}}} "
                          "for a brace)") from None
    unknown = [f for f in fields if f not in TEMPLATE_FIELDS]
    if unknown:
        raise OutputError(f"-o {printable(output)}: {{{unknown[0]}}} is not a template field; "
                          f"the fields are {_fields_list()}")
    return bool(fields)


def _fields_list() -> str:
    return ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)


def plan_template(jobs: list[Job], inputs: tuple[Path, ...], template: str, extension: str) -> None:
    """Fill ``job.output`` from ``-o template`` (:data:`TEMPLATE_FIELDS`). Every value goes
    through :func:`safe_name` (a camera name cannot add a folder); the template's own ``/`` make
    folders. A name without one of the output extensions gets ``extension``; names that come out
    equal (ignoring case) get ``-2``, ``-3``, ... in input order. ``{camera}`` and ``{date}``
    read the input's EXIF (pyexiv2) only when the template uses them."""
    from .metadata import camera_and_date

    used = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    taken: set[str] = set()
    for job in (j for j in jobs if j.error is None):
        rel = _relative(job.source, inputs)
        values = {"stem": safe_name(rel.stem if rel.suffix else rel.name) or "image",
                  "ext": safe_name(rel.suffix.lstrip(".")) or "raw",
                  "folder": str(Path(*[p for p in map(safe_name, rel.parent.parts) if p]))}
        if used & {"camera", "date"}:
            camera, date = camera_and_date(job.source)
            values.update(camera=safe_name(camera) or "unknown-camera", date=date)
        wanted = Path(template.format(**values))
        suffix = wanted.suffix if wanted.suffix.lower() in FORMATS else ""
        if not suffix:
            wanted, suffix = wanted.with_name(wanted.name + extension), extension
        job.output = _numbered(wanted, suffix, taken)


def _numbered(wanted: Path, suffix: str, taken: set[str]) -> Path:
    """``wanted``, or ``NAME-2SUFFIX``, ``-3``, ... if a name already ``taken`` (ignoring case)
    has it; the name returned is added to ``taken``."""
    candidate, n = wanted, 2
    while str(candidate).casefold() in taken:
        candidate = wanted.with_name(f"{wanted.name[:-len(suffix)]}-{n}{suffix}")
        n += 1
    taken.add(str(candidate).casefold())
    return candidate


def check_unique_outputs(pairs: Iterable[tuple[Path, Path]]) -> None:
    """Raise :class:`MicroISPError` when two pairs name the same output file (after resolving
    links and ``..``): two workers must never write one path."""
    seen: dict[str, Path] = {}
    for source, output in pairs:
        key = os.path.normcase(str(Path(output).resolve()))
        if key in seen:
            raise MicroISPError(f"{seen[key]} and {source} would both be written to {output}")
        seen[key] = source


# --- printing names ------------------------------------------------------------------------------
def printable(text: object) -> str:
    """``text`` with what a terminal would act on escaped, as Python writes it in a string
    literal: newlines, carriage returns, escape sequences, other control and format characters
    (``\\n``, ``\\x1b``, ``\\u202e``), and bytes of a file name that are not UTF-8 (``\\xe9``)."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for c in text:
        if 0xDC80 <= ord(c) <= 0xDCFF:  # os.fsdecode's surrogate escape of a non-UTF-8 byte
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)
