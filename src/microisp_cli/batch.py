"""The output side of a batch: which files to develop, where each goes, and writing them so that
nothing the user has is ever lost or half-written (docs/robustness.md).

- :func:`collect` turns the inputs (files, folders) into :class:`Job`\\ s;
  :func:`output_is_folder` and :func:`plan_outputs` name their outputs (:func:`safe_name`: no
  name taken from an input can leave the output folder); :func:`check_unique_outputs`: no two
  jobs write one file;
- :class:`FileResult` is what became of one file; :func:`planned_result` is the result of a job
  that needs no developing (a collection error, or an existing output: :func:`skip_result`);
- :func:`existing_output` (skip unless overwrite) and :func:`same_file` (never write over an
  input) decide what may be written;
- :func:`atomic_file` writes a temporary file beside the output and publishes it whole: without
  ``overwrite`` by a hard link, which the file system refuses when the name exists by then (a
  file that appeared while the develop ran is never replaced), with ``overwrite`` by
  ``os.replace``; :func:`remove_stale_temporaries` removes what a killed run left behind;
- :func:`printable` escapes what a name may hold (newlines, escape sequences, bytes that are not
  UTF-8) before it is printed; :func:`signals_as_interrupt` makes SIGTERM and SIGHUP clean up like
  Ctrl-C.

:mod:`executors` plans a whole batch from these pieces and develops it. Library code: no click, no
printing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import signal
import stat
import string
import tempfile
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from .vocabulary import FORMATS
from .errors import MicroISPError, OutputError, OutputExistsError
from .files import not_regular
from .raw import INPUT_EXTENSIONS

if TYPE_CHECKING:
    from .options import Development

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
            candidate, n = wanted, 2
            while str(candidate).casefold() in taken:
                candidate = wanted.with_name(f"{wanted.name[:-len(extension)]}-{n}{extension}")
                n += 1
            taken.add(str(candidate).casefold())
            job.output = candidate


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
        candidate, n = wanted, 2
        while str(candidate).casefold() in taken:
            candidate = wanted.with_name(f"{wanted.name[:-len(suffix)]}-{n}{suffix}")
            n += 1
        taken.add(str(candidate).casefold())
        job.output = candidate


def check_unique_outputs(pairs: Iterable[tuple[Path, Path]]) -> None:
    """Raise :class:`MicroISPError` when two pairs name the same output file (after resolving
    links and ``..``): two workers must never write one path."""
    seen: dict[str, Path] = {}
    for source, output in pairs:
        key = os.path.normcase(str(Path(output).resolve()))
        if key in seen:
            raise MicroISPError(f"{seen[key]} and {source} would both be written to {output}")
        seen[key] = source


# --- results --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FileResult:
    """What became of one file of a batch (``develop.develop_file``, the :mod:`executors`).

    ``status``: ``"done"`` (written), ``"skipped"`` (the output exists and not ``overwrite``) or
    ``"failed"``. ``message``: why it failed or was skipped, one line. ``warnings``: the library's
    warnings (metadata fallbacks), first line of each. ``seconds``: time spent developing and
    writing. ``replaced``: an existing output was overwritten. ``worker``: the Dask worker that
    developed it (parallel runs). ``detail``: the traceback of an unexpected error (parallel runs).
    ``used``: what the develop used (white balance, matrix, ...), for ``"done"`` files.
    """

    source: Path
    output: Path
    status: Literal["done", "skipped", "failed"]
    message: str = ""
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    replaced: bool = False
    worker: str | None = None
    detail: str | None = None
    used: Development | None = None

    def record(self) -> dict:
        """A JSON-ready record of this result (``microisp develop --json``)."""
        return {"input": str(self.source), "output": str(self.output), "status": self.status,
                "error": self.message if self.status == "failed" else None,
                "seconds": round(self.seconds, 3), "warnings": list(self.warnings),
                **({} if self.used is None else dataclasses.asdict(self.used))}


def skip_result(source: str | Path, output: str | Path, overwrite: bool = False) -> FileResult | None:
    """The ``"skipped"`` result when ``output`` exists and not ``overwrite``; None when there is work."""
    problem = existing_output(output, overwrite)
    return None if problem is None else FileResult(Path(source), Path(output), "skipped", problem)


def planned_result(job: Job, overwrite: bool = False) -> FileResult | None:
    """The result of a planned job (``job.output`` set, also where it failed while collecting)
    that needs no developing: ``"failed"`` for a collection error, ``"skipped"`` for an existing
    output; None when there is work."""
    assert job.output is not None
    if job.error is not None:
        return FileResult(job.source, job.output, "failed", job.error)
    return skip_result(job.source, job.output, overwrite)


# --- what may be written --------------------------------------------------------------------------
def existing_output(output: str | Path, overwrite: bool = False) -> str | None:
    """Why ``output`` is skipped (it exists, even as a dangling link, and not ``overwrite``), or
    None when it may be written."""
    if not overwrite and os.path.lexists(output):
        return f"{output} exists (use --overwrite to replace it)"
    return None


def appeared(output: str | Path) -> OutputExistsError:
    """The error for an output that did not exist when its file was planned but does by the time
    it is written (another run, another program): it is left as it is."""
    return OutputExistsError(f"{output} appeared while it was being developed: left as it is "
                             "(use --overwrite to replace it)")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file (through links, hard links and ``..``)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


# --- writing --------------------------------------------------------------------------------------
#: Temporary files of an atomic write: ``.NAME.<pid>-<random>.part`` beside ``NAME``.
TEMP_SUFFIX = ".part"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


@contextlib.contextmanager
def atomic_file(path: str | Path, overwrite: bool = False,
                finish: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """A binary file handle on a new file beside ``path``, published as ``path`` on success
    (after ``finish()``, if given, has run: a last check, which may raise to abandon the file).

    The file has no name while it is written where the file system allows (``O_TMPFILE``:
    nothing can be left behind, also in an append-only folder); elsewhere it is a temporary file
    ``.NAME.<pid>-<random>.part``. Without ``overwrite`` it is hard-linked to ``path``, which
    fails if the name exists by then: :class:`OutputExistsError`, and the file there is left as
    it is (on a file system without hard links, the name is claimed with ``O_EXCL`` first and the
    claim removed again if the file cannot be moved over it). With ``overwrite`` it replaces
    ``path`` (``os.replace``). Raises :class:`OutputError` when ``path`` exists (and not
    ``overwrite``) or cannot be written, naming it. On any exception (KeyboardInterrupt and
    SIGTERM included) nothing is left. A file system that refuses the file's permissions
    (``chmod``) gets a :class:`MicroISPWarning`, not a failure.
    """
    path = Path(path)
    problem = existing_output(path, overwrite)
    if problem is not None:
        raise OutputExistsError(problem)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise OutputError(f"{path}: cannot write there ({blocker} is a file, not a folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    if overwrite and os.path.lexists(path) and _append_only(path.parent):
        raise OutputError(f"{path}: cannot replace it: {path.parent} is append-only (chattr +a), "
                          "only new files can be made there")
    try:
        fd, tmp = _new_file(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if finish is not None:
                finish()
            _set_permissions(handle.fileno(), path)
            _publish(handle.fileno(), tmp, path, overwrite)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _remove(tmp)
        raise


def _new_file(path: Path) -> tuple[int, Path | None]:
    """A descriptor open for writing on a new file in ``path``'s folder, and its temporary name
    (None: it has none, ``O_TMPFILE``, published through ``/proc/self/fd``)."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(path.parent, tmpfile | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600), None
        except OSError:  # the file system has no unnamed files (vfat, exFAT, NFS): a named one
            pass
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    return fd, Path(name)


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _set_permissions(fd: int, path: Path) -> None:
    """The usual permissions of a new file (0o666 less the umask), or a warning where the file
    system refuses them (vfat through FUSE): the photo is written all the same."""
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError as exc:
        from .errors import MicroISPWarning

        warnings.warn(f"{path}: the file system refused its permissions ({exc.strerror or exc}): "
                      "written with the permissions it gives", MicroISPWarning, stacklevel=3)


#: ``FS_IOC_GETFLAGS`` (Linux) and its append-only flag (``chattr +a``).
_FS_IOC_GETFLAGS, _FS_APPEND_FL = 0x80086601, 0x20


def _append_only(folder: Path) -> bool:
    """Whether ``folder`` is append-only (``chattr +a``: names can be added, never removed or
    replaced); False where this cannot be read."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):
        return False
    try:
        flags = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        return bool(int.from_bytes(flags[:4], "little") & _FS_APPEND_FL)
    except OSError:
        return False
    finally:
        os.close(fd)


#: ``os.link`` errors that mean "no hard links on this file system", not "cannot write".
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
#: The modification time of a name claimed with ``O_EXCL`` (2000-01-01 00:00:00 UTC): a 0-byte
#: file with it is a claim a failed run left behind (:func:`stale_claim`).
CLAIM_MTIME = 946684800


def _publish(fd: int, tmp: Path | None, path: Path, overwrite: bool) -> None:
    """Give the complete file (open as ``fd``; named ``tmp``, or unnamed) the name ``path``;
    never over an existing name unless ``overwrite``."""
    if tmp is None:  # an unnamed file: linked in; a temporary name only to replace a file
        if not overwrite or not os.path.lexists(path):
            try:
                _link_descriptor(fd, path)
                return
            except FileExistsError:
                if not overwrite:
                    raise appeared(path) from None
        tmp = Path(tempfile.mktemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent))
        _link_descriptor(fd, tmp)
        try:
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
        return
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise appeared(path) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _claim_and_move(tmp, path)
        return
    with contextlib.suppress(OSError):  # published; a temporary name that cannot go is left
        os.unlink(tmp)


def _link_descriptor(fd: int, path: Path) -> None:
    """Give the open unnamed file ``fd`` the name ``path`` (``linkat`` through ``/proc/self/fd``
    with ``AT_SYMLINK_FOLLOW``; FileExistsError when the name exists)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:  # a dir_fd makes os.link call linkat (plain link() would link the /proc symlink itself)
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _claim_and_move(tmp: Path, path: Path) -> None:
    """Without hard links: claim ``path`` with ``O_EXCL`` (marked :data:`CLAIM_MTIME`), then move
    ``tmp`` over the claim; the claim is removed again if that fails or is interrupted."""
    try:
        claim = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise appeared(path) from None
    try:
        with contextlib.suppress(OSError):
            os.utime(claim, (CLAIM_MTIME, CLAIM_MTIME))
        claimed = os.fstat(claim)
    finally:
        os.close(claim)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            now = os.lstat(path)
            if (now.st_dev, now.st_ino, now.st_size) == (claimed.st_dev, claimed.st_ino, 0):
                os.unlink(path)  # still our empty claim: gone, so no later run skips this photo
        raise


def stale_claim(path: str | Path) -> bool:
    """Whether ``path`` is an empty file that a claim (:func:`atomic_file` on a file system
    without hard links) left behind: 0 bytes, modified at :data:`CLAIM_MTIME`."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0 and abs(info.st_mtime - CLAIM_MTIME) < 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process's own writes (another thread's) are never stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's
        return True
    return True


def remove_stale_temporaries(outputs: Iterable[str | Path]) -> int:
    """Delete the temporary files of atomic writes of any of ``outputs`` whose writing process is
    no longer running on this machine (a run killed by SIGKILL, a Dask worker that died): the
    files named ``.NAME.<pid>-<random>.part`` beside ``NAME`` (and ``.NAME.<random>.part`` of
    older versions), and an empty claim of ``NAME`` itself (:func:`stale_claim`). One folder listing per folder. Returns how many were removed."""
    by_folder: dict[Path, set[str]] = {}
    for output in outputs:
        by_folder.setdefault(Path(output).parent, set()).add(Path(output).name)
    removed = 0
    for folder, names in by_folder.items():
        for name in names:  # an empty claim of the output name that a failed run left
            if stale_claim(folder / name):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
                    removed += 1
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            name, _, tag = entry.name[1:-len(TEMP_SUFFIX)].rpartition(".")
            pid = tag.split("-", 1)[0]
            if name not in names or ("-" in tag and pid.isdigit() and _pid_alive(int(pid))):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


# --- printing names and signals -------------------------------------------------------------------
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


class Interrupted(KeyboardInterrupt):
    """A signal (SIGTERM, SIGHUP) received during a batch, raised like Ctrl-C's KeyboardInterrupt
    so the same cleanup runs; ``exit_code`` is 128 + the signal number (143 for SIGTERM, 129 for
    SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


#: The signals that end a batch like Ctrl-C: SIGTERM (kill, a service manager), SIGHUP (the
#: terminal closed, an SSH connection dropped).
INTERRUPTING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, :data:`INTERRUPTING_SIGNALS` raise :class:`Interrupted` (in the main
    thread; elsewhere, and where signals cannot be set, nothing changes)."""
    def handler(signum, frame):
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in INTERRUPTING_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
