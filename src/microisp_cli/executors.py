"""A batch from plan to results: :func:`plan_batch`, then an executor develops the jobs.

    settings = BatchSettings(weights="default", workers=2)          # how (batch_step.py)
    plan = plan_batch((Path("shoot"),), "developed/")                # what goes where (batch.py)
    executor = executor_for(settings, DevelopOptions(), plan)
    for result in executor.run(plan.jobs):                           # a FileResult per job
        print(result.source, result.status, result.message)

Two executors behind one interface (:class:`Executor`): :class:`SerialExecutor` develops the
files one after another in this process (the weights and the runner made once, on the first file
that needs them); :class:`DaskExecutor` runs them as Dask tasks (:mod:`parallel`, the ``[dask]``
extra, imported only then). Both first yield the results of jobs that need no developing
(collection errors, existing outputs) in input order and remove the temporary files of earlier
killed runs; both run :func:`batch_step.develop_file` on every file, with the same
:class:`batch_step.BatchSettings`.

Problems with what the user asked for are :class:`OptionsError` (naming the option, as the CLI
spells it) or another :class:`MicroISPError` (a usage error); messages are ``batch.printable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from . import defaults
from .batch import (STDOUT, Job, check_unique_outputs, collect, is_template, output_is_folder, plan_outputs,
                    plan_template, printable)
from .batch_step import BatchSettings, FileResult, develop_file, planned_result
from .develop import cached_runner
from .encode import format_for
from .errors import ClusterError, MicroISPError, MissingExtraError, OptionsError, OutputError, out_of_memory
from .extras import require
from .options import DevelopOptions
from .publish import atomic_file, existing_output, remove_stale_temporaries, same_file
from .runtimes.base import SegmentRunner
from .weights import Weights, load_weights
from .vocabulary import bits_problem


# --- the plan -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    """The jobs of a batch, each with its output (``-o`` itself for a job that failed while
    collecting); ``to_stdout``: ``-o -`` (see :func:`stdout_folder`)."""

    jobs: list[Job]
    to_stdout: bool = False

    @property
    def runnable(self) -> list[Job]:
        return [job for job in self.jobs if job.error is None]


def plan_batch(inputs: tuple[Path, ...], output: str, extension: str | None = None,
               recursive: bool = True, bits: int | None = None, parallel: bool = False,
               stdout_is_terminal: bool = False) -> Plan:
    """The :class:`Plan` of ``microisp develop INPUTS -o OUTPUT``: ``batch.collect``, then
    ``batch.plan_outputs`` (``extension``: of the outputs in a folder, and the format of ``-o -``).
    Checks what would fail every file: :class:`OptionsError` for an output format that is
    unknown or cannot hold ``bits``; :class:`OutputError` for an unusable ``-o`` (``-o -`` with
    several inputs, no format or ``stdout_is_terminal``; two outputs on one path when
    ``parallel``)."""
    jobs = collect(inputs, recursive)
    runnable = [j for j in jobs if j.error is None]
    to_stdout, folder = output == STDOUT, True
    if to_stdout:
        if extension is None:
            raise OutputError("-o - writes the photo to standard output: give its format "
                              "with --format png|tif|jpg|webp|avif|jxl")
        if len(inputs) != 1 or inputs[0].is_dir():
            raise OutputError("-o - (standard output) takes exactly one input file")
        if stdout_is_terminal:
            raise OutputError("-o - would write a binary image to the terminal: redirect "
                              "standard output (> FILE or | PROGRAM)")
        for job in runnable:  # developed in a private folder (stdout_folder), copied out whole
            job.output = Path(f"stdout{extension}")
    elif is_template(output):
        folder = False
        plan_template(jobs, inputs, output, extension or defaults.OUTPUT_EXTENSION)
    elif runnable:
        folder = output_is_folder(output, inputs)
        plan_outputs(jobs, inputs, Path(output), extension or defaults.OUTPUT_EXTENSION, folder)
    for job in runnable:
        try:
            kind = format_for(job.output)
        except MicroISPError as exc:
            hint = "" if folder else " (or end it with / for a folder)"
            raise OptionsError("-o", printable(f"{exc}{hint}")) from None
        if bits is not None and (problem := bits_problem(kind, bits)):
            raise OptionsError("--bits", problem)
    if parallel and not to_stdout:
        try:  # two tasks must never write one file
            check_unique_outputs([(j.source, j.output) for j in runnable])
        except MicroISPError as exc:
            raise OutputError(printable(exc)) from None
    for job in jobs:
        if job.error is not None:
            job.output = Path(output)
    return Plan(jobs, to_stdout)


@contextlib.contextmanager
def stdout_folder(plan: Plan) -> Iterator[None]:
    """For ``-o -``: the runnable jobs' outputs moved into a new private folder, removed with
    what is in it on exit (each file is copied out whole by :func:`copy_out`)."""
    if not plan.to_stdout:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="microisp-stdout-"))
    for job in plan.runnable:
        job.output = folder / job.output.name
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def copy_out(result: FileResult, stream: BinaryIO) -> FileResult:
    """A ``"done"`` file copied whole to ``stream`` (standard output); ``"failed"`` when that
    fails (a reader that went away)."""
    if result.status != "done":
        return result
    try:
        with open(result.output, "rb") as handle:
            shutil.copyfileobj(handle, stream)
            stream.flush()
    except OSError as exc:  # BrokenPipeError: the reader went away
        return dataclasses.replace(result, status="failed",
                                   message=f"cannot write to standard output ({exc.strerror or exc})")
    return result


#: Names of a stream rather than of a file: a report "written" there is written into the stream.
STREAM_NAMES = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def _report_is_stream(path: Path) -> bool:
    """Whether the report goes into what is at ``path`` (a FIFO, a character device, a name of
    standard output) rather than into a new file published there."""
    if str(path).startswith(STREAM_NAMES):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def check_report(path: str | Path, plan: Plan, overwrite: bool = False) -> None:
    """Before any file is developed, whether the ``--json`` report can go to ``path``: the output
    contract applied to it. :class:`OptionsError` (for ``--json``) when it is an input or an
    output of the batch, a folder, a file that exists and not ``overwrite``, or in a place that
    cannot be written (a read-only folder or file system, a file where a folder should be).
    A FIFO, a character device or a name of standard output is written into, never replaced."""
    if str(path) == STDOUT:  # standard output (refused with -o - when the options are read)
        return
    path = Path(path)

    def refuse(reason: str) -> None:
        raise OptionsError("--json", printable(f"{path} {reason}"))

    if _report_is_stream(path):
        if plan.to_stdout and str(path) in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
            refuse("is standard output, where the photo goes (-o -): give another name")
        return

    for job in plan.jobs:
        if same_file(job.source, path) or os.path.normpath(job.source) == os.path.normpath(path):
            refuse("is an input of this batch: refused (it would be lost)")
        if job.error is None and job.output is not None and (
                same_file(job.output, path) or os.path.normpath(job.output) == os.path.normpath(path)):
            refuse(f"is the output of {job.source}: give the report another name")
    if path.is_dir():
        refuse("is a folder: give a file name")
    if existing_output(path, overwrite) is not None:
        refuse("exists (use --overwrite to replace it)")
    folder = next((p for p in [path.parent, *path.parent.parents] if os.path.lexists(p)), Path("."))
    if not folder.is_dir():
        refuse(f"cannot be written ({folder} is a file, not a folder)")
    read_only = getattr(os, "ST_RDONLY", 1) & os.statvfs(folder).f_flag
    if read_only or not os.access(folder, os.W_OK | os.X_OK):
        refuse(f"cannot be written ({folder} is {'on a read-only file system' if read_only else 'not writable'})")


def write_json(path: str | Path, records: list[dict], overwrite: bool = False,
               stdout: BinaryIO | None = None) -> None:
    """``records`` (``FileResult.record()``) as a JSON array at ``path`` (:class:`OutputError`
    when it cannot be written): ``-`` to ``stdout``; into a FIFO, a character device or a name of
    standard output by opening it; else atomically, as a new file (:func:`publish.atomic_file`: an
    existing one only with ``overwrite``)."""
    data = json.dumps(records, indent=2).encode() + b"\n"
    if str(path) == STDOUT and stdout is not None:
        stdout.write(data)
        stdout.flush()
        return
    path = Path(path)
    if not _report_is_stream(path):
        with atomic_file(path, overwrite=overwrite) as handle:
            handle.write(data)
        return
    try:
        # appended, never truncated: standard output redirected to a file is written after what is there
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)), "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


# --- the executors ------------------------------------------------------------------------------
Tiles = Callable[[int, int], None]


class Executor:
    """Develops planned jobs: :meth:`run` yields a ``batch_step.FileResult`` per job. ``on_file(name)``
    is called as a file is taken up here, ``on_tiles(done, total)`` as its tiles are done (in
    this process only), ``on_start(text)`` once a cluster is ready, describing it."""

    def __init__(self, settings: BatchSettings, options: DevelopOptions | None = None):
        self.settings, self.options = settings, options or DevelopOptions()
        self._weights: Weights | None = None
        self._runner: SegmentRunner | None = None

    def weights(self) -> Weights:
        """The batch's weights, loaded once (:class:`OptionsError` for ``--weights``)."""
        if self._weights is None:
            weights = self.settings.weights
            try:
                self._weights = weights if isinstance(weights, Weights) else load_weights(weights)
            except MicroISPError as exc:
                raise OptionsError("--weights", printable(exc)) from None
        return self._weights

    def runner(self) -> SegmentRunner:
        """The batch's runner, made once (:class:`OptionsError` for ``--model``: not a matching
        segmented export; a missing extra stays :class:`MissingExtraError`)."""
        if self._runner is None:
            weights, s = self.weights(), self.settings
            try:
                self._runner = cached_runner(weights, s.backend, s.model, s.threads)
            except MissingExtraError:
                raise
            except MicroISPError as exc:
                raise OptionsError("--model", printable(exc)) from None
        return self._runner

    def run(self, jobs: list[Job], *, on_file: Callable[[str], None] | None = None,
            on_tiles: Tiles | None = None,
            on_start: Callable[[str], None] | None = None) -> Iterator[FileResult]:
        remove_stale_temporaries(j.output for j in jobs if j.error is None)  # of killed runs
        later: list[Job] = []
        for job in jobs:
            result = planned_result(job, self.settings.overwrite)
            if result is None and self.defers:
                later.append(job)
                continue
            if on_file is not None:
                on_file(job.source.name)
            yield result if result is not None else self._develop(job, on_tiles)
        if later:
            yield from self._develop_all(later, on_start)

    #: Whether the files to develop are left to :meth:`_develop_all` (else :meth:`_develop`).
    defers = False

    def _develop(self, job: Job, on_tiles: Tiles | None) -> FileResult:
        raise NotImplementedError

    def _develop_all(self, jobs: list[Job], on_start) -> Iterator[FileResult]:
        raise NotImplementedError


class SerialExecutor(Executor):
    """One file after another, in this process."""

    def _develop(self, job: Job, on_tiles: Tiles | None) -> FileResult:
        try:
            runner = None if self.options.thumbnail else self.runner()
        except Exception as exc:  # noqa: BLE001 - out of memory: this file fails, the next tries again
            failure = out_of_memory(exc, "load and compile the network")
            if failure is None:
                raise
            return FileResult(job.source, job.output, "failed", failure)
        tiles = on_tiles or (lambda done, total: None)
        tiles(0, 1)
        try:
            return develop_file(job.source, job.output, None if runner is None else self.weights(),
                                runner=runner, options=self.options,
                                overwrite=self.settings.overwrite, progress=on_tiles)
        finally:
            tiles(0, 1)


class DaskExecutor(Executor):
    """The files as Dask tasks (``parallel.develop_batch``), each result as it finishes. A
    cluster that cannot be started is :class:`ClusterError`; one that cannot be reached is an
    :class:`OptionsError` for ``--scheduler``."""

    defers = True

    def _develop_all(self, jobs: list[Job], on_start) -> Iterator[FileResult]:
        from .parallel import develop_batch

        settings = dataclasses.replace(self.settings, weights=self.weights())
        if settings.backend == "tflite":
            self.runner()  # check the --model file here, once, rather than fail every task
        results = develop_batch([(j.source, j.output) for j in jobs], settings, on_start=on_start,
                                options=self.options)
        try:
            with contextlib.closing(results):
                yield from results
        except ClusterError as exc:
            if settings.scheduler is not None:
                raise OptionsError("--scheduler", printable(exc)) from None
            raise ClusterError(printable(exc)) from None


def executor_for(settings: BatchSettings, options: DevelopOptions | None = None,
                 plan: Plan | None = None) -> Executor:
    """The executor of ``settings``: Dask with ``workers`` or ``scheduler`` (not for ``-o -``,
    which is one file developed here), else serial. An optional package the batch will need
    (lensfun for ``lens_correction``, the JPEG XL plugin for ``.jxl`` outputs) is checked first:
    :class:`MissingExtraError` before any file, not a failure per file."""
    if options is not None and options.lens_correction:
        require("lensfunpy", "lens", "--lens-correction")
    if plan is not None and any(j.output is not None and j.error is None and j.output.suffix.lower() == ".jxl"
                                for j in plan.jobs):
        require("pillow_jxl", "jxl", "JPEG XL output")
    if settings.parallel and not (plan is not None and plan.to_stdout):
        return DaskExecutor(settings, options)
    return SerialExecutor(settings, options)
