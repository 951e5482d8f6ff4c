"""``microisp develop INPUT... -o OUTPUT``: RAW files or folders in, finished photos out.

Options -> plan -> executor -> report: the options become a :class:`DevelopOptions` and
``batch_step.BatchSettings``, ``executors.plan_batch`` collects the inputs and names the outputs,
``executors.executor_for`` picks the serial or the Dask executor (``--workers``/``--scheduler``),
and this file reports each result as it arrives (progress with rich, one line per file, names
escaped) and sums up at the end. Exit codes (docs/robustness.md): 0 when every file was
developed or skipped, 1 when any failed, 2 for usage errors, 130 after Ctrl-C, 143 after SIGTERM,
129 after SIGHUP. The network's runtime (OpenVINO by default) is built only once there is a file
to develop, and only once per batch."""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Iterator
from pathlib import Path

import click

from .. import defaults
from ..batch import STDOUT, printable
from ..colour import COLOUR_SPACES
from ..errors import ClusterError, MicroISPError, MissingExtraError, OptionsError
from ..options import DevelopOptions, bundled_presets, parse_format, preset_blame, preset_values
from ..raw import CFA_PATTERNS, DumpFormat, parse_size
from ..runtimes import BACKENDS
from ..vocabulary import ATTENTION_MODES, BIT_DEPTHS, HIGHLIGHT_MODES, SUBSAMPLINGS


def _format_option(ctx, param, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_format(value)
    except OptionsError as exc:
        raise click.BadParameter(exc.reason) from None


def _finite_option(ctx, param, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _list_presets(ctx, param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, description in bundled_presets().items():
        click.echo(f"{name:10} {description}")
    ctx.exit(0)


def build_options(ctx: click.Context, values: dict, base: dict, dump: DumpFormat,
                  force_cfa: str | None) -> DevelopOptions:
    """The batch's :class:`DevelopOptions`: the defaults, then the ``--preset``'s values
    (``base``, without ``format``), then every option given on the command line. ``values``: the
    command's parameters that are :class:`DevelopOptions` fields of the same name. An unusable
    value is :class:`OptionsError`."""
    given = {name: value for name, value in values.items() if _given(ctx, name) or name not in base}
    if given.get("bits") is not None:
        given["bits"] = int(given["bits"])
    return DevelopOptions(**{**base, **given, "dump": dump, "cfa": force_cfa})


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


@contextlib.contextmanager
def _blamed_on_preset(ctx: click.Context, preset: str | None, base: dict) -> Iterator[None]:
    """An :class:`OptionsError` about a value the preset set (and the command line did not)
    names the preset's key instead of an option the user never typed."""
    try:
        yield
    except OptionsError as exc:
        if preset is None:
            raise
        raise preset_blame(exc, preset, {k: v for k, v in base.items() if not _given(ctx, k)}) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output file (one input; it needs an extension), folder (several inputs, an "
                   "existing folder, or ending with /; created if missing), or - for standard "
                   "output (one input, with --format).")
@click.option("-f", "--format", "extension", metavar="png|tif|jpg|webp|avif|jxl", callback=_format_option, default=None,
              help=f"Output format when -o is a folder or - (png, tif/tiff, jpg/jpeg, webp, avif, jxl) "
                   f"[default: the preset's format, else {defaults.OUTPUT_EXTENSION.lstrip('.')} for a folder].")
@click.option("--bits", type=click.Choice([str(b) for b in BIT_DEPTHS]), default=None,
              help=f"Bits per sample [default: {defaults.BITS_TIFF} for TIFF, {defaults.BITS_PNG} "
                   "for the others; JPEG, WebP, AVIF and JPEG XL are 8-bit only].")
@click.option("--quality", type=click.IntRange(1, 100), default=defaults.JPEG_QUALITY, show_default=True,
              help="JPEG, WebP, AVIF and JPEG XL quality.")
@click.option("--subsampling", type=click.Choice(SUBSAMPLINGS), default=defaults.JPEG_SUBSAMPLING,
              show_default=True, help="JPEG and AVIF chroma subsampling (4:4:4 keeps full colour resolution).")
@click.option("--wb", metavar="camera|auto|daylight|KELVIN[K][,TINT]|R,G,B", default=defaults.WB,
              show_default=True,
              help="White balance: as shot, grey world, LibRaw's daylight gains, a light's colour "
                   "temperature and tint (5500K; 3200K,-4: tint in thousandths of Duv, + greener) "
                   "through the camera's matrices, or R,G,B gains (normalised to G = 1).")
@click.option("--exposure", metavar="EV|auto", default=str(defaults.EXPOSURE), show_default=True,
              help="Exposure in EV (a linear gain of 2^EV before the tone curve), or auto "
                   f"(log-average green to {defaults.EXPOSURE_AUTO_TARGET:g}, at most about 1% "
                   f"clipped, within +-{defaults.EXPOSURE_AUTO_LIMIT:g} EV).")
@click.option("--highlights", type=click.Choice(HIGHLIGHT_MODES), default=defaults.HIGHLIGHTS,
              show_default=True, help="Clipped highlights: clip to white, blend near-white ones to neutral, or "
                                      "reconstruct lightness from the unclipped channels.")
@click.option("--look", type=click.Choice(tuple(defaults.LOOKS)), default=defaults.LOOK, show_default=True,
              help="neutral: the linear rendering, no tone curve; sigmoid: a scene-referred tone "
                   "map (mid grey kept, highlights rolled off smoothly to white, greys neutral) "
                   "with +0.5 EV, contrast 1.5 and saturation 1.1 (high-contrast: 2.0, 1.2).")
@click.option("--contrast", type=float, default=None, callback=lambda c, p, v: v if v is None else _finite_option(c, p, v),
              help="Contrast of the look's tone curve, 1-4 (1: the gentlest; replaces the look's).")
@click.option("--saturation", type=float, default=None, callback=lambda c, p, v: v if v is None else _finite_option(c, p, v),
              help="Colour saturation around each pixel's luminance, 0-3 (1: as is; replaces "
                   "the look's; greys stay grey).")
@click.option("--sharpen", type=float, default=defaults.SHARPEN, show_default=True, callback=_finite_option,
              metavar="AMOUNT",
              help=f"Capture sharpening: an unsharp mask of the luminance (sigma {defaults.SHARPEN_SIGMA:g} px), "
                   "0-5 (0: off; 0.5-1 usual).")
@click.option("--lens-correction", is_flag=True,
              help="Correct distortion, lateral chromatic aberration and vignetting from the "
                   "file's camera and lens (lensfun; the [lens] extra); a file whose lens is not "
                   "known is left as it is, with a warning.")
@click.option("--colorspace", type=click.Choice(COLOUR_SPACES), default=defaults.COLORSPACE,
              show_default=True, help="Output colour space; its ICC profile is embedded.")
@click.option("--half-size", is_flag=True, help="Quick proof: develop a 2x2-binned mosaic (half width "
                                                "and height, about 4x faster).")
@click.option("--size", type=click.IntRange(min=2), default=None, metavar="LONG_SIDE",
              help="Resize the output to this long side in pixels (Lanczos in linear light; "
                   "half-size develop when it is at most half the frame).")
@click.option("--width", type=click.IntRange(min=2), default=None, metavar="PIXELS",
              help="Resize the output to at most this width (aspect kept; with --height and --size, "
                   "the largest size within all of them).")
@click.option("--height", type=click.IntRange(min=2), default=None, metavar="PIXELS",
              help="Resize the output to at most this height (aspect kept).")
@click.option("--upscale", is_flag=True,
              help="Enlarge a photo smaller than --size/--width/--height (default: it keeps its "
                   "size, with a warning).")
@click.option("--thumbnail", is_flag=True, help="Write the preview embedded in the RAW file, without "
                                                "developing it.")
@click.option("--strip-metadata", is_flag=True, help="Leave the camera's EXIF and XMP out (the ICC "
                                                     "profile stays).")
@click.option("--preset", metavar="NAME|FILE", default=None,
              help="Options from a bundled preset or a TOML file; options given here override it.")
@click.option("--list-presets", is_flag=True, expose_value=False, is_eager=True, callback=_list_presets,
              help="List the bundled presets and exit.")
@click.option("--recursive/--no-recursive", default=True, show_default=True,
              help="Search input folders' sub-folders.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Write one JSON record per file (input, output, status, error, "
                                   "seconds, white balance and matrix used) to FILE (replaced only "
                                   "with --overwrite; a FIFO or /dev/stdout is written into); - for "
                                   "standard output.")
@click.option("--weights", default=defaults.WEIGHTS, show_default=True,
              help="Bundled weights name, or a path (.json/.npz, or a TF1 checkpoint prefix).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (default: skip them).")
@click.option("--tile-size", type=click.IntRange(min=0), default=None,
              help=f"Tile side in output pixels; 0 runs the whole frame at once. Default: {defaults.TILE_SIZE} "
                   f"for a network with attention, {defaults.ONE_PASS_TILE_SIZE} for a one-pass network.")
@click.option("--attention", type=click.Choice(ATTENTION_MODES), default=defaults.ATTENTION,
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
@click.option("--black-level", type=click.FloatRange(min=0), callback=_finite_option, default=defaults.DUMP_BLACK,
              show_default=True, help="Black level of dumps and .npy mosaics.")
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), callback=_finite_option,
              default=defaults.MAX_MEGAPIXELS,
              show_default=True, help="Refuse larger frames before their pixels are read.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Develop files in parallel on a local Dask cluster of N processes (docs/scale.md).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="Develop files on the existing Dask cluster of this scheduler (docs/scale.md).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-file lines; errors only.")
@click.pass_context
def develop(ctx, inputs, output, extension, preset, recursive, json_path, weights, overwrite, backend,
            model, threads, raw_size, cfa, force_cfa, raw_bits, black_level, workers, scheduler, quiet,
            **values):
    """Develop RAW files (any Bayer RAW LibRaw reads, sensor dumps, .npy mosaics) into photos.

    INPUT: files or folders (searched recursively unless --no-recursive). Output format from the
    extension of -o (.png, .tif/.tiff, .jpg, .webp), or --format when -o is a folder or -
    (standard output). The
    camera's EXIF and XMP are copied into every output (unless --strip-metadata).

    \b
    Examples:
      microisp develop IMG_0001.dng -o IMG_0001.jpg --quality 90
      microisp develop shoot/ -o developed/ --format tif --colorspace adobe-rgb
      microisp develop IMG.dng -o IMG.png --wb daylight --exposure +0.7 --highlights blend
      microisp develop shoot/ -o proofs/ -f jpg --preset proof --json proofs/report.json
      microisp develop frame.raw --raw-size 4000x3000 --cfa GRBG --bits-per-sample 12 -o frame.png
      microisp develop shoot/ -o developed/ --workers 2
      microisp develop IMG_0001.dng -o - --format jpg | display
    """
    from rich.console import Console

    from ..batch_step import BatchSettings
    from ..executors import executor_for, write_json

    # --- options -> plan -> executor -----------------------------------------------------------
    stdout = click.get_binary_stream("stdout")
    with _usage_errors():
        settings = BatchSettings(weights, backend, model, threads, overwrite, workers, scheduler)
        try:
            dump = DumpFormat(size=parse_size(raw_size) if raw_size else None, cfa=cfa, bits=raw_bits,
                              black=black_level)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--raw-size/--bits-per-sample/--black-level") from None
        options, plan = _plan(ctx, inputs, output, extension, preset, recursive, json_path, overwrite,
                              settings.parallel, dump, force_cfa, values, stdout)
    executor = executor_for(settings, options, plan)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    counts, records = _run_batch(executor, plan, console, quiet, stdout)
    if json_path is not None:
        try:
            write_json(json_path, records, overwrite, stdout)
        except MicroISPError as exc:
            raise click.ClickException(f"--json: {exc}") from None
    if not quiet or counts["failed"]:
        console.print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed",
                      markup=False)
    raise SystemExit(1 if counts["failed"] else 0)


def _plan(ctx, inputs, output, extension, preset, recursive, json_path, overwrite, parallel, dump,
          force_cfa, values, stdout):
    """The :class:`DevelopOptions` (defaults, then the preset, then the command line) and the
    batch's plan; usage errors as click's."""
    from ..executors import check_report, plan_batch

    if json_path is not None and str(json_path) == STDOUT and output == STDOUT:
        raise click.BadParameter("-o - already writes the photo to standard output; write the "
                                 "report to a file", param_hint="--json")
    base = preset_values(preset) if preset else {}
    if extension is None and "format" in base:
        extension = base["format"]
    with _blamed_on_preset(ctx, preset, base):
        options = build_options(ctx, values, {k: v for k, v in base.items() if k != "format"},
                                dump, force_cfa)
        plan = plan_batch(inputs, output, extension, recursive, options.bits, parallel,
                          stdout_is_terminal=output == STDOUT and stdout.isatty())
    if json_path is not None:  # checked now, not found unwritable after the whole batch
        check_report(json_path, plan, overwrite)
    return options, plan


def _run_batch(executor, plan, console, quiet: bool, stdout) -> tuple[dict[str, int], list[dict]]:
    """Run the batch, reported file by file on ``console`` (lines, progress); the counts per
    status and the ``--json`` records. Ctrl-C, SIGTERM and SIGHUP end the command with their exit
    code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .signals import Interrupted, signals_as_interrupt
    from ..executors import copy_out, stdout_folder

    def show(text: str) -> None:  # every line goes through here: names escaped
        console.print(printable(text), markup=False)

    def say(text: str) -> None:
        if not quiet:
            show(text)

    counts = {"done": 0, "skipped": 0, "failed": 0}
    records: list[dict] = []

    def report(result) -> None:
        """One file's lines, count and record, the same for every executor."""
        counts[result.status] += 1
        records.append(result.record())
        if result.status == "skipped":
            say(f"skipped {result.source}: {result.message}")
        elif result.status == "failed":
            show(f"error: {result.source}: {result.message}")
            if result.detail:  # an unexpected error in a Dask task: a bug, keep its traceback
                console.print(result.detail.rstrip(), markup=False)
        else:
            for note in result.warnings:  # the library's warnings (metadata fallbacks): one line each
                show(f"warning: {result.source}: {note}")
            target = "standard output" if plan.to_stdout else result.output
            say(f"{result.source} -> {target} ({'replaced' if result.replaced else 'wrote'}, "
                f"{result.seconds:.1f} s)")

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True, disable=quiet)
    try:
        with stdout_folder(plan), signals_as_interrupt(), progress, _usage_errors():
            files = progress.add_task("files", total=len(plan.jobs))
            tiles = progress.add_task("tiles", total=1, visible=False)
            results = executor.run(
                plan.jobs, on_start=say,
                on_file=lambda name: progress.update(files, description=printable(name)),
                on_tiles=lambda done, total: progress.update(tiles, completed=done, total=total,
                                                             visible=total > 1))
            with contextlib.closing(results):
                for result in results:
                    report(copy_out(result, stdout) if plan.to_stdout else result)
                    progress.update(files, description=printable(result.source.name), advance=1)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (signals.Interrupted)
        signalled = isinstance(exc, Interrupted)
        how = ("interrupted" if not signalled else
               "hung up (SIGHUP)" if exc.signum == getattr(signal, "SIGHUP", None) else "terminated")
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            show(f"{how}: the file being written was not left behind")
        raise SystemExit(exc.exit_code if signalled else 130) from None
    return counts, records


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """The library's errors about what was asked for, as click reports them: an option's
    (:class:`OptionsError`) or the command line's (other :class:`MicroISPError`) usage error,
    exit 2; a Dask cluster that cannot start, exit 1; a missing extra is left to the group."""
    try:
        yield
    except OptionsError as exc:
        raise click.BadParameter(exc.reason, param_hint=exc.option) from None
    except MissingExtraError:
        raise
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    except MicroISPError as exc:
        raise click.UsageError(str(exc)) from None
