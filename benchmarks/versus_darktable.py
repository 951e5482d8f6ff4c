#!/usr/bin/env python3
"""``microisp develop`` beside ``darktable-cli`` and LibRaw AHD on one synthetic DNG -> 8-bit PNG.

Writes one synthetic RGGB DNG (``benchmarks/scale.py``'s scene: 12 bits, as-shot white balance)
of ``--size`` (24 MP by default) and develops it, as whole processes, with:

* ``microisp develop`` with the default weights, and with ``--weights mhc`` (the published
  network's size: 4 features per branch, 13,560 parameters);
* ``darktable-cli`` (Debian package ``darktable``, installed with apt-get when missing) with a
  neutral pipeline: a fresh config folder saying ``plugins/darkroom/workflow=none`` (no filmic,
  sigmoid or base curve) and ``chromatic-adaptation=legacy`` (as-shot white balance in the white
  balance module), an XMP history holding only the demosaic module set to LMMSE,
  ``--core --configdir DIR --library :memory:``, 8-bit PNG;
* LibRaw's AHD through rawpy (as-shot white balance, sRGB, 8 bits), written by microisp's PNG
  writer.

The tools take turns (one run of each per round, ``--runs`` rounds) so that they share the
machine's load alike. Per run: wall time (start to exit), CPU time (user + system, from
``wait4``) and peak resident memory (``ru_maxrss``) of the process. The table (medians, and the
ratio of each median wall time to darktable's) replaces the section of docs/benchmarks.md between
``<!-- darktable:start -->`` and ``<!-- darktable:end -->`` with ``--write-doc``. Usage::

    python benchmarks/versus_darktable.py --write-doc          # 24 MP, 5 rounds
    python benchmarks/versus_darktable.py --size 1200x800 --runs 1   # a quick check
    python benchmarks/versus_darktable.py --variant "--weights attention"   # one more row

``--variant ARGS`` (repeatable) adds a ``microisp develop ... ARGS`` row.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import cpu_model, load, write_doc, write_frame  # noqa: E402

START, END = "<!-- darktable:start -->", "<!-- darktable:end -->"
#: LibRaw's AHD develop of one file, a process of its own (``bench.libraw_develop``).
LIBRAW = [sys.executable, "-m", "microisp_cli.bench", "--libraw-develop"]
MICROISP = "from microisp_cli.cli.main import main; main()"


def ensure_darktable() -> str:
    found = shutil.which("darktable-cli")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "darktable"],
                       check=True, stdout=subprocess.DEVNULL)
        found = shutil.which("darktable-cli")
    if found is None:
        raise SystemExit("darktable-cli not found, and apt-get could not install darktable")
    return found


def darktable_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return out.split("\n", 1)[0].replace("this is ", "")


def commands(dng: Path, out: Path, scratch: Path, darktable: str,
             variants: list[str] = ()) -> dict[str, tuple[list[str], Path]]:
    """Tool name -> (command, the file it writes); ``variants``: more develop arguments, a row each."""
    from microisp_cli.peers import darktable_command, darktable_setup

    config, xmp = darktable_setup(scratch, "LMMSE")  # the neutral settings eval uses
    microisp = [sys.executable, "-c", MICROISP, "develop", str(dng), "--overwrite", "-q", "-o"]
    return {
        "microisp (default weights)": (microisp + [str(out / "a.png")], out / "a.png"),
        "microisp --weights mhc (published size)": (
            microisp + [str(out / "b.png"), "--weights", "mhc"], out / "b.png"),
        "darktable-cli (LMMSE, neutral)": (
            [darktable, *darktable_command(dng, out / "c.png", config, xmp)[1:]], out / "c.png"),
        "LibRaw AHD (rawpy)": ([*LIBRAW, str(dng), str(out / "d.png")], out / "d.png"),
        **{f"microisp {args}": (microisp + [str(out / f"v{i}.png"), *shlex.split(args)], out / f"v{i}.png")
           for i, args in enumerate(variants)},
    }


def measure(command: list[str], output: Path, env: dict[str, str]) -> dict:
    output.unlink(missing_ok=True)  # darktable-cli never overwrites: it adds _01 to the name
    before = load()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0 or not output.exists():
        raise SystemExit(f"{command[0]} failed:\n{error}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024, "load_before": before, "load_after": load()}


def table(results: dict[str, list[dict]], size: str, runs: int, darktable: str) -> str:
    median = {name: {k: statistics.median(r[k] for r in rows) for k in ("wall", "cpu", "peak_mib")}
              for name, rows in results.items()}
    reference = median["darktable-cli (LMMSE, neutral)"]["wall"]
    loads = [r[k] for rows in results.values() for r in rows for k in ("load_before", "load_after")]
    lines = [
        f"Generated by `python benchmarks/versus_darktable.py --size {size} --runs {runs} "
        f"--write-doc` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; {darktable}; one synthetic {size} "
        "12-bit RGGB DNG -> 8-bit PNG; tools in turn, "
        f"{runs} rounds; load average {min(loads):.1f} to {max(loads):.1f} during the runs "
        "(a shared machine: compare the ratios, measured side by side).",
        "",
        "| tool | wall (median) | wall / darktable | CPU (user + system) | peak RSS | walls |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        m = median[name]
        walls = ", ".join(f"{r['wall']:.1f}" for r in rows)
        lines.append(f"| {name} | {m['wall']:.1f} s | {m['wall'] / reference:.2f}x | "
                     f"{m['cpu']:.1f} s | {m['peak_mib']:.0f} MiB | {walls} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000", help="WxH of the frame (default 24 MP)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variant", action="append", default=[], metavar="ARGS",
                        help="more microisp develop arguments: one more row (repeatable)")
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    darktable = ensure_darktable()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="microisp-vs-darktable-") as folder:
        scratch = Path(folder)
        dng = write_frame(scratch / "in", width, height, env)
        out = scratch / "out"
        out.mkdir()
        plan = commands(dng, out, scratch, darktable, args.variant)
        results: dict[str, list[dict]] = {name: [] for name in plan}
        for round_ in range(args.runs):
            for name, (command, output) in plan.items():
                results[name].append(measure(command, output, env))
                print(f"round {round_ + 1}: {name}: {results[name][-1]['wall']:.1f} s", flush=True)
    text = table(results, args.size, args.runs, darktable_version(darktable))
    print(text)
    if args.write_doc:
        write_doc(text, ROOT / "docs" / "benchmarks.md", START, END)


if __name__ == "__main__":
    main()
