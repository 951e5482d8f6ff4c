"""``microisp develop INPUT... -o OUTPUT``: RAW files or folders in, finished photos out.

A thin layer over :mod:`microisp_cli.develop`: it collects the inputs, names the outputs, reports
progress with rich, turns library errors into one line per file and sums up at the end; with
``--workers``/``--scheduler`` the files run as Dask tasks (:mod:`microisp_cli.parallel`) and are
reported by the same code as they finish. Exit code 0 when every file was developed or skipped,
1 when any failed, 2 for usage errors.
TensorFlow is loaded only once there is a file to develop, and only once per batch.
"""

from __future__ import annotations

import dataclasses
import os
import unicodedata
from pathlib import Path

import click

from .. import defaults
from ..encode import FORMATS
from ..errors import MicroISPError, MissingExtraError
from ..raw import CFA_PATTERNS, INPUT_EXTENSIONS, DumpFormat, parse_size
from ..runtimes import BACKENDS


@dataclasses.dataclass
class Job:
    source: Path
    output: Path | None = None
    error: str | None = None  # a problem found while collecting (missing path, empty folder)


def collect(inputs: tuple[Path, ...]) -> list[Job]:
    """One job per file: files as given, folders searched recursively for RAW extensions."""
    jobs: list[Job] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_EXTENSIONS
                           and not p.name.startswith("."))
            if not found:
                jobs.append(Job(item, error="no RAW files in this folder (searched recursively)"))
            jobs += [Job(p) for p in found]
        elif item.exists():
            jobs.append(Job(item))
        else:
            jobs.append(Job(item, error="no such file or directory"))
    return jobs


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


#: Longest output name stem, in UTF-8 bytes (file systems allow 255 for the whole name, and the
#: temporary file of an atomic write adds a prefix and a suffix).
NAME_BYTES = 160


def safe_name(name: str) -> str:
    """``name`` (a file name or folder name taken from an input) made safe to create inside the
    output folder: characters other than letters, digits and ``._-+=,@()[]`` and space become
    ``_``; leading dots, dashes and spaces and trailing dots and spaces are dropped (no ``..``, no
    hidden files, no option-like names); at most :data:`NAME_BYTES` bytes. ``""`` when no letter or
    digit is left: the caller picks a name."""
    name = unicodedata.normalize("NFC", name)
    kept = "".join(c if c.isalnum() or c in "._-+=,@()[] " else "_" for c in name)
    kept = kept.lstrip(" .-").rstrip(" .")
    kept = kept.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return kept if any(c.isalnum() for c in kept) else ""


def plan_outputs(jobs: list[Job], inputs: tuple[Path, ...], output: Path, extension: str,
                 as_folder: bool = False) -> None:
    """Fill ``job.output``: ``output`` itself for a single file, else files inside folder ``output``
    named from the inputs (sub-folders mirrored; ``NAME.EXT.png`` where two inputs share a stem).

    Every name taken from an input goes through :func:`safe_name` (``image`` when nothing is
    left), so no output can land outside ``output``; names still equal (ignoring case) after
    that get ``-2``, ``-3``, ... in input order."""
    todo = [j for j in jobs if j.error is None]
    single = len(inputs) == 1 and not inputs[0].is_dir() and len(todo) == 1
    if single and output.suffix.lower() in FORMATS and not output.is_dir() and not as_folder:
        todo[0].output = output
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


def _format_option(ctx, param, value: str) -> str:
    extension = "." + value.lower().lstrip(".")
    if extension not in FORMATS:
        raise click.BadParameter(f"{value!r} is not one of png, tif, tiff, jpg, jpeg")
    return extension


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output file (one input) or folder (created if missing; a trailing / forces a folder).")
@click.option("-f", "--format", "extension", metavar="png|tif|jpg", callback=_format_option,
              default=defaults.OUTPUT_EXTENSION.lstrip("."), show_default=True,
              help="Output format when -o is a folder (png, tif/tiff, jpg/jpeg).")
@click.option("--bits", type=click.Choice(["8", "16"]), default=None,
              help=f"Bits per sample [default: {defaults.BITS_PNG} for PNG and JPEG, "
                   f"{defaults.BITS_TIFF} for TIFF].")
@click.option("--quality", type=click.IntRange(1, 100), default=defaults.JPEG_QUALITY, show_default=True,
              help="JPEG quality.")
@click.option("--weights", default=defaults.WEIGHTS, show_default=True,
              help="Bundled weights name, or a path (.json/.npz, or a TF1 checkpoint prefix).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (default: skip them).")
@click.option("--tile-size", type=click.IntRange(min=0), default=defaults.TILE_SIZE, show_default=True,
              help="Tile side in output pixels; 0 runs the whole frame at once.")
@click.option("--attention", type=click.Choice(["exact", "tile"]), default=defaults.ATTENTION,
              show_default=True, help="Global attention over tiles (exact) or per tile (approximate).")
@click.option("--backend", type=click.Choice(BACKENDS), default=defaults.BACKEND, show_default=True,
              help="Runtime that runs the network.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="tflite backend: a segmented file from `microisp export --tflite`.")
@click.option("--threads", type=click.IntRange(min=1), default=defaults.THREADS,
              help="Threads for the runtime (per file with --workers/--scheduler) [default: the "
                   "runtime's choice; with --workers/--scheduler, each host's cores / files at a time].")
@click.option("--raw-size", metavar="WxH", default=None,
              help="Read inputs as headerless little-endian uint16 sensor dumps of this size.")
@click.option("--cfa", type=click.Choice(CFA_PATTERNS), default=defaults.DUMP_CFA, show_default=True,
              help="CFA order of dumps and 2-D .npy mosaics (top-left 2x2 cell).")
@click.option("--force-cfa", type=click.Choice(CFA_PATTERNS), default=None,
              help="Read every input with this CFA order, whatever its metadata says (wrong tags).")
@click.option("--bits-per-sample", "--raw-bits", "raw_bits", type=click.IntRange(1, 16), default=None,
              help="Significant bits of dump / .npy samples [default: from the largest value].")
@click.option("--black-level", type=click.FloatRange(min=0), default=defaults.DUMP_BLACK,
              show_default=True, help="Black level of dumps and .npy mosaics.")
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), default=defaults.MAX_MEGAPIXELS,
              show_default=True, help="Refuse larger frames before their pixels are read.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Develop files in parallel on a local Dask cluster of N processes (docs/scale.md).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="Develop files on the existing Dask cluster of this scheduler (docs/scale.md).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-file lines; errors only.")
def develop(inputs, output, extension, bits, quality, weights, overwrite, tile_size, attention, backend,
            model, threads, raw_size, cfa, force_cfa, raw_bits, black_level, max_megapixels, workers,
            scheduler, quiet):
    """Develop RAW files (any Bayer RAW LibRaw reads, sensor dumps, .npy mosaics) into photos.

    INPUT: files or folders (searched recursively). Output format from the extension of -o
    (.png, .tif/.tiff, .jpg), or --format when -o is a folder.

    \b
    Examples:
      microisp develop IMG_0001.dng -o IMG_0001.png
      microisp develop shoot/ -o developed/ --format tif
      microisp develop frame.raw --raw-size 4000x3000 --cfa GRBG --bits-per-sample 12 -o frame.png
      microisp develop shoot/ -o developed/ --workers 2
    """
    from ..develop import FileResult, cached_runner, develop_file, skip_result
    from ..encode import format_for
    from ..weights import load_weights

    # --- options -------------------------------------------------------------------------------
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers starts a local cluster, --scheduler uses an existing one: "
                               "give one of them")
    if (backend == "tflite") != (model is not None):
        raise click.UsageError("--model FILE goes with --backend tflite (make one with "
                               "`microisp export --tflite -o FILE`)")
    if tile_size and (tile_size < 16 or tile_size % 2):
        raise click.BadParameter("must be 0 (whole frame) or an even number >= 16", param_hint="--tile-size")
    try:
        dump = DumpFormat(size=parse_size(raw_size) if raw_size else None, cfa=cfa, bits=raw_bits,
                          black=black_level)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--raw-size/--bits-per-sample/--black-level") from None
    as_folder = output.endswith(("/", os.sep))
    output = Path(output)
    jobs = collect(inputs)
    runnable = [j for j in jobs if j.error is None]
    single_file = len(inputs) == 1 and len(runnable) == 1 and not inputs[0].is_dir()
    if single_file and not as_folder and output.suffix and not output.is_dir():
        try:
            format_for(output)
        except MicroISPError as exc:
            raise click.BadParameter(f"{exc} (or end it with / for a folder)", param_hint="-o") from None
    if len(runnable) > 1 and output.suffix.lower() in FORMATS and not output.is_dir():
        raise click.UsageError(f"-o {output} is a file name, but there are {len(runnable)} inputs: "
                               "give a folder")
    plan_outputs(jobs, inputs, output, extension, as_folder)
    for job in runnable:
        try:
            kind = format_for(job.output)
        except MicroISPError as exc:
            raise click.BadParameter(str(exc), param_hint="-o") from None
        if kind == "jpeg" and bits == "16":
            raise click.BadParameter("JPEG is 8-bit only", param_hint="--bits")

    parallel = workers is not None or scheduler is not None
    if parallel:
        from ..parallel import check_unique_outputs

        try:  # two tasks must never write one file
            check_unique_outputs([(j.source, j.output) for j in runnable])
        except MicroISPError as exc:
            raise click.UsageError(str(exc)) from None
    options = dict(bits=int(bits) if bits else None, quality=quality, tile_size=tile_size,
                   attention=attention, dump=dump, cfa=force_cfa, max_megapixels=max_megapixels)

    # --- the batch -----------------------------------------------------------------------------
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def say(text: str) -> None:
        if not quiet:
            console.print(text, markup=False)

    done = skipped = failed = 0
    state: dict[str, object] = {}

    def report(result: FileResult) -> None:
        """One file's lines and count, the same for serial and parallel runs."""
        nonlocal done, skipped, failed
        if result.status == "skipped":
            skipped += 1
            say(f"skipped {result.source}: {result.message}")
        elif result.status == "failed":
            failed += 1
            console.print(f"error: {result.source}: {result.message}", markup=False)
            if result.detail:  # an unexpected error in a Dask task: a bug, keep its traceback
                console.print(result.detail.rstrip(), markup=False)
        else:
            for note in result.warnings:  # the library's warnings (metadata fallbacks): one line each
                console.print(f"warning: {result.source}: {note}", markup=False)
            done += 1
            verb = "replaced" if result.replaced else "wrote"
            say(f"{result.source} -> {result.output} ({verb}, {result.seconds:.1f} s)")

    def planned(job: Job) -> FileResult | None:
        """The result of a file that needs no development (a collection error, or skipped)."""
        if job.error is not None:
            return FileResult(job.source, job.output or output, "failed", job.error)
        assert job.output is not None
        return skip_result(job.source, job.output, overwrite)

    def weights_for_batch():
        if "weights" not in state:
            try:
                state["weights"] = load_weights(weights)
            except MicroISPError as exc:
                raise click.BadParameter(str(exc), param_hint="--weights") from None
        return state["weights"]

    def runner_for_batch():
        if "runner" not in state:
            try:
                state["runner"] = cached_runner(weights_for_batch(), backend, model, threads)
            except MissingExtraError:
                raise
            except MicroISPError as exc:  # a --model file that is not a matching segmented export
                raise click.BadParameter(str(exc), param_hint="--model") from None
        return state["runner"]

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True, disable=quiet)
    try:
        with progress:
            files = progress.add_task("files", total=len(jobs))
            tiles = progress.add_task("tiles", total=1, visible=False)
            pending: list[Job] = []
            for job in jobs:
                result = planned(job)
                if result is None and parallel:
                    pending.append(job)
                    continue
                progress.update(files, description=f"{job.source.name}")
                if result is None:
                    runner = runner_for_batch()
                    progress.update(tiles, completed=0, total=1, visible=False)

                    def on_tiles(n_done: int, total: int) -> None:
                        progress.update(tiles, completed=n_done, total=total, visible=total > 1)

                    try:
                        result = develop_file(job.source, job.output, weights_for_batch(), runner=runner,
                                              overwrite=overwrite, progress=on_tiles, **options)
                    finally:
                        progress.update(tiles, visible=False)
                report(result)
                progress.advance(files)
            if pending:
                _develop_on_cluster(pending, weights_for_batch(), runner_for_batch, workers, scheduler,
                                    backend, model, threads, overwrite, options, say, report,
                                    lambda name: progress.update(files, description=name, advance=1))
    except KeyboardInterrupt:
        console.print("interrupted: the file being written was not left behind", markup=False)
        raise SystemExit(130) from None
    summary = f"{done} done, {skipped} skipped, {failed} failed"
    if not quiet or failed:
        console.print(summary, markup=False)
    raise SystemExit(1 if failed else 0)


def _develop_on_cluster(jobs: list[Job], weights, runner_for_batch, workers, scheduler, backend, model,
                        threads, overwrite, options, say, report, advance) -> None:
    """The files of ``jobs`` as Dask tasks (``parallel.develop_files``), each result reported
    as it arrives."""
    import contextlib

    from ..parallel import ClusterError, develop_files

    if backend == "tflite":
        runner_for_batch()  # check the --model file here, once, rather than fail every task
    results = develop_files([(j.source, j.output) for j in jobs], weights, workers=workers,
                            scheduler=scheduler, backend=backend, model=model, threads=threads,
                            overwrite=overwrite, on_start=say, **options)
    try:
        with contextlib.closing(results):
            for result in results:
                report(result)
                advance(result.source.name)
    except ClusterError as exc:
        if scheduler is not None:
            raise click.BadParameter(str(exc), param_hint="--scheduler") from None
        raise click.ClickException(str(exc)) from None
