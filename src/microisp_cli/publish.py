"""Publishing a file: what may be written, and writing it so that nothing the user has is ever
lost or half-written (docs/robustness.md). A leaf of the output side: :mod:`encode` writes through
it, :mod:`batch`, :mod:`develop` and :mod:`executors` ask it what may be written.

- :func:`existing_output` (skip unless overwrite) and :func:`same_file` (never write over an
  input) decide what may be written; :func:`appeared` is the error for an output that appeared
  while its file was developed;
- :func:`atomic_file` writes a temporary file beside the output and publishes it whole: without
  ``overwrite`` by a hard link, which the file system refuses when the name exists by then (a
  file that appeared while the develop ran is never replaced), with ``overwrite`` by
  ``os.replace``; :func:`remove_stale_temporaries` removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError, OutputExistsError


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
