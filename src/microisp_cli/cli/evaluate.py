"""``microisp eval``: PSNR / SSIM of a weights file beside classical developers on the same RAW files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import defaults
from ..tensorflow_import import import_tensorflow


@click.command("eval")
@click.option("--weights", "weights_spec", default=defaults.WEIGHTS, show_default=True,
              help="Weights name or path (.json/.npz).")
@click.option("--set", "set_dir", default=defaults.EVAL_DIR, show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Synthetic evaluation set folder (made from --photos if it has no set.json).")
@click.option("--photos", default=defaults.TRAIN_PHOTOS, show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Photo folder whose held-out split makes the synthetic set.")
@click.option("--count", default=defaults.EVAL_COUNT, show_default=True, type=click.IntRange(0),
              help="Synthetic DNGs to make (0: one per held-out photo).")
@click.option("--raw-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Paired set instead: RAW files ...")
@click.option("--target-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="... with same-named sRGB targets here.")
@click.option("--peers", "peer_spec", default="auto", show_default=True, metavar="LIST",
              help="Yardsticks scored beside the network, comma-separated, e.g. 'LibRaw AHD,darktable LMMSE,"
                   "RawTherapee AMaZE' (case-insensitive); 'auto': LibRaw AHD and DHT, darktable RCD/LMMSE, "
                   "RawTherapee AMaZE/LMMSE and LMMSE with noise reduction (NR15/30/50), and demosaicnet, "
                   "where installed; 'all': every peer; empty: none.")
@click.option("--border", default=defaults.EVAL_BORDER, show_default=True, type=click.IntRange(0))
@click.option("--no-ssim", is_flag=True, help="PSNR only (faster).")
@click.option("--threads", default=None, type=click.IntRange(1))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the per-file table and means as JSON.")
@click.option("--per-file", is_flag=True, help="Print every file's scores, not only the means.")
def evaluate(weights_spec: str, set_dir: Path, photos: Path, count: int, raw_dir: Path | None,
             target_dir: Path | None, peer_spec: str, border: int, no_ssim: bool, threads: int | None,
             json_path: Path | None, per_file: bool) -> None:
    """Score weights beside LibRaw, darktable and RawTherapee on held-out synthetic DNGs (or a paired set)."""

    import_tensorflow()
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from .. import peers
    from ..errors import MicroISPError
    from ..training import evaluate as ev

    methods = _peer_names(peer_spec, peers)
    if (raw_dir is None) != (target_dir is None):
        raise click.UsageError("--raw-dir and --target-dir go together")
    console = Console(stderr=True)
    try:
        if raw_dir is not None:
            items = ev.paired_items(raw_dir, target_dir)
        else:
            if not (set_dir / "set.json").exists():
                if not photos.is_dir():
                    raise click.ClickException(f"{photos}: no such photo folder to make the set from")
                console.print(f"making the synthetic set in {set_dir} from {photos} (held-out split)")
                ev.make_synthetic_set(photos, set_dir, count=count)
            items = ev.load_set(set_dir)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("eval", total=len(items))
            result = ev.evaluate(weights_spec, items, methods, border, with_ssim=not no_ssim, threads=threads,
                                 progress=lambda done, total, name: bar.update(task, completed=done))
    except (MicroISPError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None

    metrics = ("psnr",) if no_ssim else ("psnr", "ssim")
    table = Table(title=f"{len(items)} files, border {border} px ({weights_spec})")
    table.add_column("file" if per_file else "")
    for m in result.methods:
        table.add_column(f"{m} PSNR", justify="right")
        if not no_ssim:
            table.add_column("SSIM", justify="right")
    if per_file:
        for row in result.rows:
            table.add_row(row["file"], *[f"{row[f'{m} {k}']:.{2 if k == 'psnr' else 4}f}"
                                          for m in result.methods for k in metrics])
    table.add_row("mean", *[f"{result.mean(m, k):.{2 if k == 'psnr' else 4}f}"
                            for m in result.methods for k in metrics], style="bold")
    for group in result.groups():
        n = sum(group in r["groups"] for r in result.rows)
        table.add_row(f"{group} ({n})", *[f"{result.mean(m, k, group):.{2 if k == 'psnr' else 4}f}"
                                          for m in result.methods for k in metrics])
    Console(width=max(120, 24 * len(result.methods))).print(table)
    for line in _margins(result):
        click.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps({"weights": weights_spec, "set": str(raw_dir or set_dir),
                                         **result.to_dict()}, indent=1) + "\n")


def _margins(result) -> list[str]:
    """microisp's lead over each yardstick (mean, each half, the halves without the saturated
    frames), then over the best yardstick of each half."""
    from ..training.evaluate import UNSATURATED

    ours, peers = result.methods[0], result.methods[1:]
    groups = [g for g in ("clean", "noisy", UNSATURATED, f"clean, {UNSATURATED}", f"noisy, {UNSATURATED}")
              if g in result.groups()]
    lines = []
    for m in peers:
        parts = [f"{result.mean(ours) - result.mean(m):+.2f} dB mean PSNR"]
        parts += [f"{g} {result.mean(ours, group=g) - result.mean(m, group=g):+.2f}" for g in groups]
        lines.append(f"microisp - {m}: " + ", ".join(parts))
    for g in groups if peers else ():
        best = max(peers, key=lambda m: result.mean(m, group=g))
        lines.append(f"{g}: best yardstick {best} {result.mean(best, group=g):.2f} dB, microisp "
                     f"{result.mean(ours, group=g):.2f} ({result.mean(ours, group=g) - result.mean(best, group=g):+.2f})")
    return lines


def _peer_names(spec: str, peers) -> list[str]:
    """The yardstick names of a ``--peers`` value (see its help)."""
    spec = spec.strip()
    if spec.lower() == "auto":
        return peers.available(["LibRaw AHD", "LibRaw DHT", "darktable RCD", "darktable LMMSE", "RawTherapee AMaZE",
                                "RawTherapee LMMSE", *(f"RawTherapee LMMSE NR{n}" for n in peers.RAWTHERAPEE_DENOISE),
                                "demosaicnet"])
    if spec.lower() == "all":
        return list(peers.PEERS)
    by_lower = {name.lower(): name for name in peers.PEERS}
    names = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.lower() not in by_lower:
            raise click.BadParameter(f"unknown peer {part!r}; choose from {', '.join(peers.PEERS)}", param_hint="--peers")
        names.append(by_lower[part.lower()])
    missing = [f"{n}: {peers.missing(n)}" for n in names if peers.missing(n)]
    if missing:
        raise click.BadParameter("; ".join(missing), param_hint="--peers")
    return names
