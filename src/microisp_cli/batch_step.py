"""One file of a batch, as both executors run it: how the batch runs (:class:`BatchSettings`), the
step itself (:func:`develop_file`: skip, develop and write, or say why not) and what became of the
file (:class:`FileResult`).

The serial executor calls :func:`develop_file` in this process, and every Dask task of
:mod:`parallel` on a worker, with the same :class:`BatchSettings` (passed whole to the tasks).
Library code: no click, no printing.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from pathlib import Path
from typing import Literal

from . import defaults, publish
from .batch import Job
from .develop import Progress, develop_into
from .errors import (ClusterError, MicroISPError, MissingExtraError, OptionsError, OutputExistsError,
                     out_of_memory)
from .extras import require
from .options import DevelopOptions, Development
from .publish import existing_output
from .runtimes.base import SegmentRunner
from .weights import Weights

#: What the ``[dask]`` extra is for, in the message when it is missing.
DASK_PURPOSE = "developing on a Dask cluster (--workers, --scheduler)"


# --- how a batch runs ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How a batch runs: the network (``weights``, ``backend``, ``model``, ``threads``), whether
    existing outputs are replaced, and where: here, or on a Dask cluster (``workers``: a new
    local one of that many processes; ``scheduler``: an existing one). Checked when made."""

    weights: str | Path | Weights | None = defaults.WEIGHTS
    backend: str = defaults.BACKEND
    model: str | Path | None = None
    threads: int | None = defaults.THREADS
    overwrite: bool = False
    workers: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise MicroISPError("--workers starts a local cluster, --scheduler uses an existing "
                                "one: give one of them")
        if (self.backend == "tflite") != (self.model is not None):
            raise MicroISPError("--model FILE goes with --backend tflite (make one with "
                                "`microisp export --tflite -o FILE`)")
        if self.scheduler is not None:
            try:
                scheduler_address(self.scheduler)
            except MissingExtraError:
                raise
            except MicroISPError as exc:
                raise OptionsError("--scheduler", str(exc)) from None

    @property
    def parallel(self) -> bool:
        return self.workers is not None or self.scheduler is not None


def scheduler_address(address: str) -> tuple[str, int]:
    """(host, port) of a scheduler address ``tcp://HOST:PORT`` (or ``tls://``, or ``HOST:PORT``;
    port 8786 by default); :class:`ClusterError` saying what is wrong with any other text."""
    addressing = require("distributed.comm.addressing", "dask", DASK_PURPOSE)
    parse_address, parse_host_port = addressing.parse_address, addressing.parse_host_port
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, 8786)
    except ValueError as exc:
        raise ClusterError(f"{address!r} is not a scheduler address tcp://HOST:PORT ({exc})") from None
    if scheme not in ("tcp", "tls") or not re.fullmatch(r"[A-Za-z0-9._%:-]+", host) or not 0 < port < 65536:
        raise ClusterError(f"{address!r} is not a scheduler address tcp://HOST:PORT")
    return host, port


# --- what became of a file -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FileResult:
    """What became of one file of a batch (:func:`develop_file`, the :mod:`executors`).

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


# --- the step -----------------------------------------------------------------------------------
def develop_file(source: str | Path, output: str | Path, weights: Weights | None = None, *,
                 runner: SegmentRunner | None = None, options: DevelopOptions | None = None,
                 overwrite: bool = False, progress: Progress | None = None) -> FileResult:
    """:func:`develop.develop_to_file` as one step of a batch: never raises for a bad input or an
    unwritable output, but returns a ``"failed"`` :class:`FileResult` naming the cause (one
    line); an existing ``output`` (also one that appears while the file is developed) is skipped
    unless ``overwrite``; running out of memory, in any form (:func:`errors.out_of_memory`: a
    native library's ``std::bad_alloc``, a lazy import that cannot be mapped), fails the file,
    not the batch. Errors that are not
    :class:`MicroISPError` or :class:`OSError` are bugs and propagate. Both executors (in
    process and every Dask task) run this same function (``weights`` and ``runner`` may be None
    for ``thumbnail``)."""
    source, output = Path(source), Path(output)
    skipped = skip_result(source, output, overwrite)
    if skipped is not None:
        return skipped
    replacing = output.exists()
    started = time.perf_counter()
    failure = used = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            used = develop_into(source, output, weights, runner, options or DevelopOptions(), overwrite,
                                progress)
        except OutputExistsError:  # it did not exist above: it appeared while this file was developed
            return FileResult(source, output, "skipped", str(publish.appeared(output)))
        except MicroISPError as exc:
            failure = str(exc).replace("\n", " ")
        except Exception as exc:  # noqa: BLE001 - out of memory in any form; the rest are bugs
            failure = out_of_memory(exc)
            if failure is None and isinstance(exc, OSError):  # the file it was about, when the error says
                failure = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"{exc.strerror or exc}"
            if failure is None:
                raise
    notes = tuple((str(item.message).splitlines() or [""])[0] for item in caught
                  if item.category.__module__.startswith("microisp_cli"))
    if failure is not None:
        return FileResult(source, output, "failed", failure, notes)
    return FileResult(source, output, "done", warnings=notes,
                            seconds=time.perf_counter() - started, replaced=replacing, used=used)
