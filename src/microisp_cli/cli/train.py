"""``microisp train``: train MicroISP weights on synthetic pairs made from a folder of sRGB photos."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import click

from .. import defaults
from ..model import BASES
from ..tensorflow_import import import_tensorflow
from ..training.train import LOSSES, OUT_OF_RANGE, TrainConfig


#: ``microisp train``'s options for the fields of :class:`TrainConfig`, in ``--help`` order: the
#: click type and help of each; names and defaults come from the config object itself.
CONFIG_OPTIONS: dict[str, dict] = {
    "photos": dict(type=click.Path(file_okay=False),
                   help="Folder of sRGB photos (a fixed held-out split is never trained on; not read with --resume)."),
    "steps": dict(type=click.IntRange(1), help="Total steps (the cosine schedule ends here)."),
    "batch": dict(type=click.IntRange(1)),
    "patch": dict(type=click.IntRange(2), help="Patch side, full-resolution pixels (even)."),
    "lr": dict(type=float, help="Peak Adam learning rate."),
    "lr_min": dict(type=float),
    "warmup": dict(type=click.IntRange(1)),
    "loss": dict(type=click.Choice(LOSSES)),
    "ssim_weight": dict(type=float, help="Weight of a (1 - SSIM) term."),
    "colour_fraction": dict(type=click.FloatRange(0, 1),
                            help="Share of patches whose colour channels are shuffled and saturated (unusual colours)."),
    "highlight_fraction": dict(type=click.FloatRange(0, 1),
                               help="Share of patches over-exposed 1-4x, so the sensor clips (highlights, point lights)."),
    "smooth_fraction": dict(type=click.FloatRange(0, 1),
                            help="Share of patches cut from photos upscaled 2-4x (smooth frames, no Bayer-frequency detail)."),
    "out_of_range": dict(type=click.Choice(OUT_OF_RANGE),
                         help="Rendered values outside [0, 1] in the loss: clipped (no gradient), or the curve's end "
                              "slopes (pulls outputs back into range; docs/weights.md)."),
    "stages": dict(type=click.IntRange(1)),
    "blocks": dict(type=click.IntRange(0)),
    "features": dict(type=click.IntRange(1)),
    "attention_hidden": dict(type=click.IntRange(1)),
    "base": dict(type=click.Choice(BASES)),
    "base_input": dict(is_flag=True, help="The last conv also reads the encoded base (--base lmmse or lmmse-ri): "
                                          "the network sees what it corrects."),
    "attention": dict(negatable=True, help="Each block ends with the global channel attention (published); without "
                                           "it the network runs in one pass (docs/weights.md)."),
    "init": dict(metavar="WEIGHTS", show_default=False,
                 help="Start from these weights (name or path) instead of random; the model may add attention blocks "
                      "or the base input."),
    "seed": dict(type=int),
    "checkpoint_every": dict(type=click.IntRange(1)),
}


def config_options(command):
    """``command`` with one option per :data:`CONFIG_OPTIONS` field, its default the config's."""
    defaults_of = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, settings in reversed(CONFIG_OPTIONS.items()):
        settings = {"default": defaults_of[name], "show_default": True, **settings}
        flag = "--" + name.replace("_", "-")
        if settings.pop("negatable", False):
            flag = f"{flag}/--no-{flag[2:]}"
        elif settings.get("is_flag"):
            settings.pop("show_default")
        command = click.option(flag, name, **settings)(command)
    return command


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@config_options
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR's latest checkpoint (its config.json wins).")
@click.option("--threads", default=defaults.TRAIN_THREADS, show_default=True, type=click.IntRange(1))
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              help="At the end, write the weights as this .npz/.json pair.")
@click.option("--no-progress", is_flag=True, help="Plain log lines instead of a progress bar.")
def train(run_dir: Path, resume: bool, threads: int, export_path: Path | None, no_progress: bool,
          **fields) -> None:
    """Train on synthetic pairs from PHOTOS; checkpoints go to RUN_DIR/ckpt.

    Ctrl-C (or SIGTERM) saves a checkpoint; `--resume` continues from it with the same batches.
    """
    config_file = run_dir / "config.json"
    if resume:
        if not config_file.exists():
            raise click.ClickException(f"{run_dir}: nothing to resume (no config.json)")
        saved = json.loads(config_file.read_text())
        if click.get_current_context().get_parameter_source("steps").name != "DEFAULT":
            saved["steps"] = fields["steps"]  # lengthen or shorten the run (the cosine schedule follows)
        config = TrainConfig(**saved)
    else:
        if not Path(fields["photos"]).is_dir():
            raise click.BadParameter(f"directory {fields['photos']!r} does not exist", param_hint="'--photos'")
        if (run_dir / "ckpt").exists() and any((run_dir / "ckpt").iterdir()):
            raise click.ClickException(f"{run_dir} already holds checkpoints: use --resume or another folder")
        try:
            config = TrainConfig(**fields)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _run(config, run_dir, resume, threads, export_path, no_progress)


def _run(config: TrainConfig, run_dir: Path, resume: bool, threads: int, export_path: Path | None,
         no_progress: bool) -> None:
    """The training run of ``config`` into ``run_dir``, reported on stderr."""
    if not config.model.attention_points:
        # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI and up; a one-pass
        # network trains about twice as fast with it on an AVX2 EPYC (docs/weights.md). Networks with
        # attention keep TensorFlow's choice: oneDNN's gradient of their stride-3 convs crashes.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    from ..errors import MicroISPError
    from ..model import count_parameters
    from ..training.train import Trainer, export_checkpoint

    try:
        trainer = Trainer(config, run_dir)
    except (ValueError, MicroISPError) as exc:
        raise click.ClickException(str(exc)) from None
    start = trainer.restore() if resume else 0
    if not resume:
        trainer.save()
    click.echo(f"{run_dir}: {count_parameters(config.model):,} parameters, {json.dumps(dataclasses.asdict(config.model))}, "
               f"step {start} of {config.steps}", err=True)
    stopping = {"flag": False}

    def on_signal(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    log_every = 25
    try:
        if no_progress:
            def report(info):
                if info["step"] % log_every == 0 or info["step"] == info["total"]:
                    click.echo(f"step {info['step']}/{info['total']} loss {info['loss']:.5f} "
                               f"psnr {info['psnr']:.2f} lr {info['lr']:.2e} {info['seconds']:.0f}s", err=True)
            result = trainer.run(progress=report, stop=lambda: stopping["flag"])
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TextColumn("loss {task.fields[loss]:.4f}  psnr {task.fields[psnr]:.2f} dB"),
                          TimeElapsedColumn(), TimeRemainingColumn()) as bar:
                task = bar.add_task("train", total=config.steps, completed=start, loss=0.0, psnr=0.0)

                def report(info):
                    bar.update(task, completed=info["step"], loss=info["loss"], psnr=info["psnr"])

                result = trainer.run(progress=report, stop=lambda: stopping["flag"])
    except KeyboardInterrupt:
        path = trainer.save()
        click.echo(f"interrupted: saved {path}; continue with --resume", err=True)
        raise SystemExit(130) from None
    click.echo(f"step {result['step']}: checkpoint {result.get('checkpoint', '-')}", err=True)
    if export_path is not None:
        click.echo(f"weights: {export_checkpoint(run_dir, export_path)}", err=True)
