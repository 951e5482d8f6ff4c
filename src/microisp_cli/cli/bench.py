"""``microisp bench``: time the network and its peak memory on this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import defaults
from ..resolution import NAMED, Resolution, parse_resolution
from ..runtimes import BACKENDS


class ResolutionType(click.ParamType):
    """``fullhd``, ``12mp``, ``32mp`` or ``WxH``; several may be joined by commas."""

    name = "resolution"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return tuple(parse_resolution(part) for part in str(value).split(",") if part.strip())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _render(results, report, console) -> None:
    from rich import box
    from rich.table import Table

    ratios = {row["tiled"]: row["time_ratio"] for row in report["tiling_costs"]}
    table = Table(title="microisp bench (times in seconds)", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("frame", "runtime", "tile", "start", "init", "first", "median", "p90",
                 "min-max", "MP/s", "CPU-s/MP", "% FP32 peak", "% INT8 peak", "peak MiB", "tiled/whole"):
        table.add_column(name, justify="left" if name in ("frame", "runtime", "tile") else "right")
    for r in results:
        c = r.config
        runtime = c.runtime
        if c.threads:
            runtime += f" x{c.threads}"
        tile = "whole" if c.tile_size == 0 else "default" if c.tile_size is None else str(c.tile_size)
        if not r.ok:
            why = f"skipped: {r.skipped}" if r.skipped else f"failed: {r.error}"
            table.add_row(c.resolution.label, runtime, tile, f"[yellow]{why}[/yellow]")
            continue
        ratio = ratios.get(c.label)
        table.add_row(c.resolution.label, runtime, tile, _fmt(r.start_to_ready_s, 2),
                      _fmt(r.init_s, 2), _fmt(r.first_run_s), _fmt(r.median_s), _fmt(r.p90_s),
                      f"{r.min_s:.3f}-{r.max_s:.3f}", _fmt(r.mp_per_s, 2), _fmt(r.cpu_s_per_mp, 2),
                      _fmt(r.fp32_peak_percent, 0), _fmt(r.int8_peak_percent, 0), _fmt(r.peak_rss_mb, 0),
                      "" if ratio is None else f"{ratio:.2f}x")
    console.print(table)
    for r in results:
        if r.ok and r.stages:
            parts = ", ".join(f"{k} {v['median_s']:.3f}" for k, v in r.stages.items())
            console.print(f"{r.config.label}, stage medians (s): {parts}")
    m = report["machine"]
    console.print(
        f"[dim]{m['cpu']}, {m['usable_cpus']} usable CPUs, {m['memory_gib']} GiB; OpenVINO "
        f"{m.get('openvino')}, TensorFlow "
        f"{m['tensorflow']}, ai-edge-litert {m['ai_edge_litert']}, microisp {m['microisp']}.\n"
        "start: process start to runner ready; init: weights/model load; first: first run "
        "(tracing, allocation); median, p90, min-max: timed runs after warm-up; peak MiB: "
        "resident peak during the runs, runtime included (fresh process per row); CPU-s/MP: "
        "user + system CPU time per megapixel; % FP32 peak: convolution MACs per second over "
        "the CPU's FP32 peak (cores x SIMD lanes x clock, one FMA unit); % INT8 peak: the same MACs over "
        "its INT8 peak (4 MACs per 32-bit lane and cycle with VNNI, 2 without).[/dim]"
    )


@click.command()
@click.option("-r", "--resolution", "resolutions", type=ResolutionType(), multiple=True,
              help=f"Frame size: {', '.join(NAMED)} or WIDTHxHEIGHT. Repeat or join with commas "
                   f"for several. Default: {', '.join(defaults.BENCH_RESOLUTIONS)}.")
@click.option("-b", "--backend", type=click.Choice(BACKENDS), default=defaults.BACKEND,
              show_default=True, help="Runtime: TensorFlow or LiteRT (TFLite).")
@click.option("-m", "--model", type=click.Path(dir_okay=False),
              help="tflite: the .tflite file (default: export the default weights now); "
                   "tf: a weights name or file (default: the bundled weights).")
@click.option("-p", "--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="TFLite precision to export and run [default: fp32, or the --model file's own]; "
                   "tf runs fp32.")
@click.option("-t", "--threads", type=click.IntRange(min=1), default=defaults.THREADS,
              help="Threads for the runtime (default: the runtime's choice).")
@click.option("--tile-size", "tile_sizes", type=click.IntRange(min=0), multiple=True,
              help=f"Output tile side in pixels, 0 for the whole frame; repeatable. Default: "
                   f"the network's ({defaults.TILE_SIZE}, or {defaults.ONE_PASS_TILE_SIZE} for a one-pass network) "
                   f"and, where it fits in memory, the whole frame.")
@click.option("-n", "--runs", type=click.IntRange(min=1), default=defaults.BENCH_RUNS,
              show_default=True, help="Timed runs per configuration.")
@click.option("-w", "--warmup", type=click.IntRange(min=0), default=defaults.BENCH_WARMUP,
              show_default=True, help="Untimed runs first (the first run counts as one).")
@click.option("-i", "--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="A RAW file: time decode / network / render / encode of it instead of a "
                   "synthetic frame.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write every figure and the machine's description to this JSON file.")
def bench(resolutions, backend, model, precision, threads, tile_sizes, runs, warmup, input_path,
          json_path) -> None:
    """Time the network (start-up, first run, median/p90/min/max) and its peak memory.

    Each configuration runs in a fresh process. Example:

        microisp bench -r fullhd -r 12mp --backend tflite --precision int8 --json out.json
    """
    from rich.console import Console

    from .. import bench as lib
    from ..errors import MicroISPError

    console = Console()
    if not console.is_terminal:
        console = Console(width=132)
    chosen: list[Resolution] = [res for group in resolutions for res in group]
    if input_path:
        if chosen:
            raise click.UsageError("--input sets the frame size; do not combine it with --resolution")
        try:
            chosen = [_input_resolution(input_path)]
        except MicroISPError as exc:
            raise click.ClickException(str(exc)) from None
    elif not chosen:
        chosen = [parse_resolution(name) for name in defaults.BENCH_RESOLUTIONS]
    if backend != "tflite" and precision not in (None, "fp32"):
        raise click.UsageError(f"--precision fp16/int8 applies to --backend tflite; {backend} runs fp32")
    precision = _model_precision(model, precision) if backend == "tflite" and model else precision
    precision = precision or "fp32"
    try:
        configs = lib.plan(chosen, tile_sizes or None, backend=backend, precision=precision,
                           model=model, threads=threads, runs=runs, warmup=warmup,
                           input=input_path)
    except lib.BenchError as exc:
        raise click.UsageError(str(exc)) from None

    with console.status("") as status:
        def progress(index, total, config):
            if config is not None:
                status.update(f"measuring {index + 1}/{total}: {config.label} "
                              f"({config.warmup} warm-up + {config.runs} timed runs)")

        try:
            results = lib.run_benchmarks(configs, progress)
        except MicroISPError as exc:
            raise click.ClickException(str(exc)) from None

    report = lib.bench_report(results, command=["microisp", "bench", *sys.argv[2:]]
                              if Path(sys.argv[0]).name == "microisp" else None)
    _render(results, report, console)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_path}")
    if any(r.error for r in results):
        sys.exit(1)


def _model_precision(model: str, asked: str | None) -> str | None:
    """The precision a .tflite export declares in its metadata; a UsageError if it contradicts
    ``asked``."""
    from ..errors import MicroISPError
    from ..tflite_format import read_metadata

    try:
        meta = read_metadata(model) or {}
    except (MicroISPError, OSError) as exc:
        raise click.UsageError(f"--model: {exc}") from None
    found = meta.get("precision")
    if asked and found and asked != found:
        raise click.UsageError(f"--precision {asked} but {model} is a {found} export")
    return found or asked


def _input_resolution(path: str) -> Resolution:
    """The frame size of a RAW file, through the develop pipeline's decoder."""
    from ..raw import decode

    width, height = decode(path).size
    return Resolution(width, height, Path(path).name)
