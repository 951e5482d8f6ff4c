"""``microisp export``: write the network as a checked TFLite file."""

from __future__ import annotations

from pathlib import Path

import click

from .. import defaults
from ..resolution import NAMED, parse_resolution
from ..tensorflow_import import import_tensorflow


def _resolution(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_resolution(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _shape(shape) -> str:
    return "x".join("?" if d < 0 else str(d) for d in shape)


@click.command()
@click.option("--tflite", "tflite", is_flag=True, required=True,
              help="Write a TFLite (LiteRT) flatbuffer (the only format so far).")
@click.option("--fp16", "precision", flag_value="fp16",
              help="Float16 weights (GPU delegates run them in half precision).")
@click.option("--int8", "precision", flag_value="int8",
              help="Int8 weights and activations (NNAPI/DSP/NPU), calibrated on real and "
                   "synthetic RAW crops; an LMMSE base stays in float32.")
@click.option("--fp32", "precision", flag_value="fp32", default=True,
              help="Float32 (default).")
@click.option("--resolution", callback=_resolution,
              help=f"Fixed-shape whole-frame model for this frame size: {', '.join(NAMED)} or "
                   "WIDTHxHEIGHT (12mp -> input 1x1500x2000x4, like the published file).")
@click.option("--tile-size", type=click.IntRange(min=2),
              help="Fixed-shape model for square tiles of this many pixels (attention per tile).")
@click.option("-w", "--weights", default=defaults.WEIGHTS, show_default=True,
              help="Weights: a bundled name or a path to a .json/.npz or TF1 checkpoint.")
@click.option("--calibration", "calibration", multiple=True, type=click.Path(exists=True),
              help="INT8: RAW files, photos or folders to calibrate on (repeatable); synthetic "
                   "scenes are always added.")
@click.option("--check/--no-check", default=None,
              help="Compare the file's output with TensorFlow's on a test scene (default: on, "
                   "except for fixed inputs above 4 MP).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .tflite file to write.")
def export(tflite, precision, resolution, tile_size, weights, calibration, check, output) -> None:
    """Export the network to TFLite and audit its ops and accuracy.

    Without --resolution or --tile-size the file holds one signature per segment and attention
    head, with dynamic sizes: `microisp develop --backend tflite --model FILE` runs it through
    the exact tiled pipeline.

    \b
    Examples:
      microisp export --tflite -o microisp.tflite
      microisp export --tflite --fp16 --resolution 12mp -o microisp-12mp-fp16.tflite
      microisp export --tflite --int8 --tile-size 512 --calibration raws/ -o tile-int8.tflite
    """

    import_tensorflow()
    from ..errors import MicroISPError
    from ..export import export_tflite
    from ..weights import load_weights

    if resolution is not None and tile_size is not None:
        raise click.UsageError("give --resolution or --tile-size, not both")
    try:
        w = load_weights(weights)
        click.echo(f"converting {w.name} ({precision}) ...", err=True)
        result = export_tflite(w, output, precision=precision, resolution=resolution,
                               tile_size=tile_size, calibration_sources=calibration, check=check)
    except MicroISPError as exc:
        raise click.ClickException(str(exc)) from None

    click.echo(f"wrote {Path(result.path)}")
    detail = ""
    if result.precision == "int8":
        detail = (f" (int8 network; the {w.config.base} base in float32: {', '.join(result.float_ops)})"
                  if result.float_ops else " (int8 weights and activations, float32 input/output)")
    click.echo(f"  precision  {result.precision}{detail}")
    kind = ("segments + attention heads, dynamic size (for the tiled pipeline)"
            if result.kind == "segments" else "fixed shape, whole network")
    click.echo(f"  kind       {kind}")
    click.echo(f"  size       {result.size_kb:.1f} KB")
    for key in sorted(result.inputs):
        ins = ", ".join(f"{n} {_shape(s)}" for n, s in sorted(result.inputs[key].items()))
        outs = ", ".join(f"{n} {_shape(s)}" for n, s in sorted(result.outputs[key].items()))
        click.echo(f"  {key:<16} {ins} -> {outs}")
    click.echo(f"  ops        {', '.join(result.ops)} (audit passed)")
    acc = result.accuracy
    if acc is None:
        click.echo("  accuracy   not checked (use --check)")
    else:
        click.echo(f"  accuracy   vs TensorFlow FP32 on a {acc.input_shape[1] * 2}x"
                   f"{acc.input_shape[0] * 2} test scene: max abs {acc.max_abs:.2e}, "
                   f"PSNR {acc.psnr_db:.1f} dB")
