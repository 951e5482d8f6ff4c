"""``microisp train``: train MicroISP weights on synthetic pairs made from a folder of sRGB photos."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from .. import defaults
from ..model import BASES
from ..tensorflow_import import import_tensorflow


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--photos", default=defaults.TRAIN_PHOTOS, show_default=True,
              type=click.Path(file_okay=False), help="Folder of sRGB photos (a fixed held-out split is never trained on; not read with --resume).")
@click.option("--steps", default=defaults.TRAIN_STEPS, show_default=True, type=click.IntRange(1), help="Total steps (the cosine schedule ends here).")
@click.option("--batch", default=defaults.TRAIN_BATCH, show_default=True, type=click.IntRange(1))
@click.option("--patch", default=defaults.TRAIN_PATCH, show_default=True, type=click.IntRange(2), help="Patch side, full-resolution pixels (even).")
@click.option("--lr", default=defaults.TRAIN_LR, show_default=True, type=float, help="Peak Adam learning rate.")
@click.option("--lr-min", default=defaults.TRAIN_LR_MIN, show_default=True, type=float)
@click.option("--warmup", default=defaults.TRAIN_WARMUP, show_default=True, type=click.IntRange(1))
@click.option("--loss", default=defaults.TRAIN_LOSS, show_default=True, type=click.Choice(["l1", "mse"]))
@click.option("--ssim-weight", default=0.0, show_default=True, type=float, help="Weight of a (1 - SSIM) term.")
@click.option("--colour-fraction", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of patches whose colour channels are shuffled and saturated (unusual colours).")
@click.option("--highlight-fraction", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of patches over-exposed 1-4x, so the sensor clips (highlights, point lights).")
@click.option("--smooth-fraction", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of patches cut from photos upscaled 2-4x (smooth frames, no Bayer-frequency detail).")
@click.option("--out-of-range", default=defaults.TRAIN_OUT_OF_RANGE, show_default=True,
              type=click.Choice(["clip", "extend"]),
              help="Rendered values outside [0, 1] in the loss: clipped (no gradient), or the curve's end "
                   "slopes (pulls outputs back into range; docs/weights.md).")
@click.option("--stages", default=2, show_default=True, type=click.IntRange(1))
@click.option("--blocks", default=2, show_default=True, type=click.IntRange(0))
@click.option("--features", default=4, show_default=True, type=click.IntRange(1))
@click.option("--attention-hidden", default=4, show_default=True, type=click.IntRange(1))
@click.option("--base", default=defaults.TRAIN_BASE, show_default=True, type=click.Choice(BASES))
@click.option("--base-input", is_flag=True,
              help="The last conv also reads the encoded base (--base lmmse or lmmse-ri): the network sees what it corrects.")
@click.option("--init", "init", default="", metavar="WEIGHTS",
              help="Start from these weights (name or path) instead of random; the model may add attention blocks "
                   "or the base input.")
@click.option("--seed", default=defaults.TRAIN_SEED, show_default=True, type=int)
@click.option("--checkpoint-every", default=defaults.TRAIN_CHECKPOINT_EVERY, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR's latest checkpoint (its config.json wins).")
@click.option("--threads", default=defaults.TRAIN_THREADS, show_default=True, type=click.IntRange(1))
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              help="At the end, write the weights as this .npz/.json pair.")
@click.option("--no-progress", is_flag=True, help="Plain log lines instead of a progress bar.")
def train(run_dir: Path, photos: str, steps: int, batch: int, patch: int, lr: float, lr_min: float,
          warmup: int, loss: str, ssim_weight: float, colour_fraction: float,
          highlight_fraction: float, smooth_fraction: float, out_of_range: str, stages: int, blocks: int, features: int,
          attention_hidden: int, base: str, base_input: bool, init: str, seed: int, checkpoint_every: int, resume: bool,
          threads: int, export_path: Path | None, no_progress: bool) -> None:
    """Train on synthetic pairs from PHOTOS; checkpoints go to RUN_DIR/ckpt.

    Ctrl-C (or SIGTERM) saves a checkpoint; `--resume` continues from it with the same batches.
    """
    import dataclasses
    import json

    from ..training.train import TrainConfig

    config_file = run_dir / "config.json"
    if resume:
        if not config_file.exists():
            raise click.ClickException(f"{run_dir}: nothing to resume (no config.json)")
        saved = json.loads(config_file.read_text())
        if click.get_current_context().get_parameter_source("steps").name != "DEFAULT":
            saved["steps"] = steps      # lengthen or shorten the run (the cosine schedule follows)
        config = TrainConfig(**saved)
    else:
        if not Path(photos).is_dir():
            raise click.BadParameter(f"directory {photos!r} does not exist", param_hint="'--photos'")
        if (run_dir / "ckpt").exists() and any((run_dir / "ckpt").iterdir()):
            raise click.ClickException(f"{run_dir} already holds checkpoints: use --resume or another folder")
        try:
            config = TrainConfig(photos=photos, stages=stages, blocks=blocks, features=features,
                                 attention_hidden=attention_hidden, base=base, base_input=base_input, steps=steps, batch=batch,
                                 patch=patch, lr=lr, lr_min=lr_min, warmup=warmup, loss=loss,
                                 ssim_weight=ssim_weight, colour_fraction=colour_fraction,
                                 highlight_fraction=highlight_fraction, smooth_fraction=smooth_fraction,
                                 out_of_range=out_of_range,
                                 init=init, seed=seed, checkpoint_every=checkpoint_every)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

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
