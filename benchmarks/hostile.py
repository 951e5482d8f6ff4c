"""Hostile environments (issue 28): each case reproduced for real, from the command line, and
judged by the contract of docs/robustness.md.

    python benchmarks/hostile.py                      # this tree, a table on standard output
    python benchmarks/hostile.py --write-docs         # ... and into docs/robustness.md
    python benchmarks/hostile.py --src /work/main/src # another tree (the code before the fixes)

A case builds its files in a fresh folder, runs ``microisp develop ...`` in a new process (with
an environment, a resource limit, an ``LD_PRELOAD`` shim or a signal, as the case says) and
checks the contract: no traceback; the exit code the case expects (0, 1, 2, 129, 130, 143); one
line per file; inputs unchanged; no temporary file or 0-byte claim left; every output a complete
image (it decodes); plus what the case itself must show. Cases that need root (tmpfs mounts,
``chattr +a``, ``mknod``) or a C compiler (the shim, ``tests/hostile_shim.c``) are reported as
skipped where those are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "robustness.md"
START, END = "<!-- hostile campaign: start -->", "<!-- hostile campaign: end -->"
ROOT_USER = os.geteuid() == 0


@dataclasses.dataclass
class Run:
    code: int
    stderr: str
    stdout: bytes = b""


@dataclasses.dataclass
class Case:
    item: str
    name: str
    expected: tuple[int, ...]
    run: Callable[[Path, "Context"], tuple[Run, list[str]]]  # -> the run, and problems it shows
    needs: str = ""  # "root", "shim"


class Context:
    def __init__(self, src: Path, shim: Path | None):
        self.src, self.shim = src, shim

    def env(self, **extra) -> dict:
        return {**os.environ, "PYTHONPATH": str(self.src), **extra}

    def shimmed(self, **switches) -> dict:
        return self.env(LD_PRELOAD=str(self.shim), **switches)

    def microisp(self, *args, env=None, preexec=None, timeout=600, cwd=None) -> Run:
        process = subprocess.run([sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
                                  *map(str, args)], capture_output=True, timeout=timeout,
                                 env=env or self.env(), preexec_fn=preexec, cwd=cwd)
        return Run(process.returncode, process.stderr.decode(errors="replace"), process.stdout)

    def start(self, *args, env=None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
                                 *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env or self.env())


# --- files --------------------------------------------------------------------------------------
def dng(path: Path, h: int = 60, w: int = 84, seed: int = 0, **kwargs) -> Path:
    from microisp_cli.synthetic import random_mosaic
    from microisp_cli.training.dng import write_dng

    args = {"black_level": 64, "white_level": 4095, "as_shot_neutral": (0.5, 1.0, 0.7), **kwargs}
    return write_dng(path, random_mosaic(h, w, seed), "GBRG", **args)


def dng_with_xmp(path: Path, kilobytes: int = 20) -> Path:
    import pyexiv2

    dng(path, camera="Test Camera X1")
    with pyexiv2.Image(str(path)) as image:
        image.modify_xmp({"Xmp.dc.description": {'lang="x-default"': "x" * (kilobytes * 1024)}})
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, options: str = ""):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", folder], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def leftovers(folder: Path) -> list[str]:
    """Temporary files, 0-byte files and outputs that do not decode, under ``folder``."""
    from PIL import Image

    found = []
    if not folder.exists():
        return found
    for path in folder.rglob("*"):
        if path.is_dir() or path.name == "filler":
            continue
        if path.name.endswith(".part"):
            found.append(f"{path.name} left")
        elif path.suffix in (".png", ".tif", ".jpg", ".webp"):
            try:
                if path.stat().st_size == 0:
                    raise ValueError("0 bytes")
                with Image.open(path) as image:
                    image.load()
            except Exception as exc:  # noqa: BLE001 - any failure to decode is the finding
                found.append(f"{path.name} incomplete ({type(exc).__name__})")
    return found


def lines_for(run: Run, files: list[Path]) -> list[str]:
    """Problems with the per-file lines: every file exactly one line (developed, skipped or error)."""
    lines = [ln for ln in run.stderr.splitlines() if ln and not ln.startswith("warning:")]
    problems = []
    for f in files:
        mine = [ln for ln in lines if f" {f}" in f" {ln}" and (ln.startswith((f"{f} ->", f"error: {f}:",
                                                                                f"skipped {f}:")))]
        if len(mine) != 1:
            problems.append(f"{f.name}: {len(mine)} lines")
    return problems


# --- the cases ----------------------------------------------------------------------------------
def json_input(d: Path, c: Context):
    a = dng(d / "a.dng")
    before = digest(a)
    run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", a)
    return run, ([] if digest(a) == before else ["the input RAW was replaced"])


def json_existing(d: Path, c: Context):
    a, report = dng(d / "a.dng"), d / "report.json"
    report.write_text("keep")
    run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", report)
    return run, ([] if report.read_text() == "keep" else ["the existing file was replaced"])


def json_fifo(d: Path, c: Context):
    a, fifo = dng(d / "a.dng"), d / "report"
    os.mkfifo(fifo)
    got: list[bytes] = []
    threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True).start()
    run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", fifo, "-q")
    time.sleep(0.5)
    problems = [] if stat.S_ISFIFO(os.lstat(fifo).st_mode) else ["the FIFO was replaced by a file"]
    return run, problems + ([] if got and got[0].startswith(b"[") else ["nothing came through the FIFO"])


def json_device(d: Path, c: Context):
    a, null = dng(d / "a.dng"), d / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", null, "-q")
    return run, ([] if stat.S_ISCHR(os.lstat(null).st_mode) else ["the device was replaced by a file"])


def json_stdout(d: Path, c: Context):
    a = dng(d / "a.dng")
    run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", "/dev/stdout", "-q")
    return run, ([] if run.stdout.startswith(b"[") else ["no JSON on standard output"])


def json_read_only(d: Path, c: Context):
    a = dng(d / "a.dng")
    with tmpfs(d / "ro", "1m", ",ro"):
        run = c.microisp("develop", a, "-o", f"{d}/out/", "--json", d / "ro" / "r.json")
    return run, ([] if not (d / "out").exists() else ["the batch ran before the report was found unwritable"])


def full_disk(extension: str):
    def case(d: Path, c: Context):
        source = dng_with_xmp(d / "a.dng")
        sizes = {}
        for flag in ("--strip-metadata", "-q"):
            out = d / flag.strip("-") / f"a.{extension}"
            c.microisp("develop", source, "-o", out, flag)
            sizes[flag] = out.stat().st_size
        with tmpfs(d / "disk", "4m"):
            fill(d / "disk", (sizes["-q"] + sizes["--strip-metadata"]) // 2)
            run = c.microisp("develop", source, "-o", d / "disk" / f"a.{extension}")
            problems = leftovers(d / "disk")
            if run.code == 0 and (d / "disk" / f"a.{extension}").stat().st_size != sizes["-q"]:
                problems.append("published with a size other than the photo's")
        return run, problems
    return case


def claim_left(d: Path, c: Context):
    a = dng(d / "a.dng")
    env = c.shimmed(HOSTILE_NO_TMPFILE="1", HOSTILE_NO_LINKS="1", HOSTILE_FAIL_RENAME="/fat/")
    run = c.microisp("develop", a, "-o", f"{d}/fat/", env=env)
    again = c.microisp("develop", a, "-o", f"{d}/fat/")
    problems = leftovers(d / "fat")
    if any(ln.startswith("skipped ") for ln in again.stderr.splitlines()):
        problems.append("the next run skipped the photo (0-byte claim left)")
    return run, problems


def stale_claim(d: Path, c: Context):
    a = dng(d / "a.dng")
    (d / "out").mkdir()
    (d / "out" / "a.png").touch()
    os.utime(d / "out" / "a.png", (946684800, 946684800))  # what an interrupted claim leaves
    run = c.microisp("develop", a, "-o", f"{d}/out/")
    return run, ([] if (d / "out" / "a.png").stat().st_size > 0 else ["the stale claim was skipped"])


@contextlib.contextmanager
def append_only(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+a", folder], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-a", folder], check=True)


def append_only_new(d: Path, c: Context):
    files = [dng(d / "a.dng"), dng(d / "b.dng", seed=1)]
    with append_only(d / "out"):
        run = c.microisp("develop", *files, "-o", f"{d}/out/")
        problems = leftovers(d / "out") + lines_for(run, files)
    return run, problems + ([] if "Operation not permitted" not in run.stderr else ["Operation not permitted"])


def append_only_replace(d: Path, c: Context):
    files = [dng(d / "a.dng")]
    with append_only(d / "out"):
        c.microisp("develop", *files, "-o", f"{d}/out/")
        run = c.microisp("develop", *files, "-o", f"{d}/out/", "--overwrite")
        problems = leftovers(d / "out") + lines_for(run, files)
    return run, problems + ([] if "append-only" in run.stderr else ["the message does not name the cause"])


def signal_during_sync(signum: int):
    def case(d: Path, c: Context):
        a, mark = dng(d / "a.dng"), d / "syncing"
        process = c.start("develop", a, "-o", f"{d}/out/",
                          env=c.shimmed(HOSTILE_NO_TMPFILE="1", HOSTILE_SLOW_FSYNC=str(mark)))
        deadline = time.monotonic() + 120
        while not mark.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        run = Run(process.returncode, stderr.decode(errors="replace"))
        problems = leftovers(d / "out") + ([] if "not left behind" in run.stderr else ["no message"])
        return run, problems
    return case


def memory_limit(megabytes: int):
    def case(d: Path, c: Context):
        files = [dng(d / "a.dng"), dng(d / "big.dng", h=4000, w=6000), dng(d / "b.dng", seed=1)]
        limit = megabytes * 2**20
        run = c.microisp("develop", *files, "-o", f"{d}/out/",
                         preexec=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
        return run, leftovers(d / "out") + lines_for(run, files)
    return case


def exiv2_crash(workers: int | None):
    def case(d: Path, c: Context):
        files = [dng(d / "a.dng"), dng(d / "crashes.dng", seed=1), dng(d / "b.dng", seed=2)]
        run = c.microisp("develop", *files, "-o", f"{d}/out/", *(["--workers", workers] if workers else []),
                         env=c.shimmed(HOSTILE_EXIV2_CRASH="crashes.dng"))
        problems = leftovers(d / "out") + lines_for(run, files)
        done = sorted(p.name for p in (d / "out").glob("*.png")) if (d / "out").exists() else []
        return run, problems + ([] if done == ["a.png", "b.png"] else [f"developed: {done}"])
    return case


def tmpdir_full(d: Path, c: Context):
    a = dng(d / "mid.dng", h=1500, w=2000)
    with tmpfs(d / "scratch", "2m"):
        run = c.microisp("develop", a, "-o", d / "out.png", env=c.env(TMPDIR=str(d / "scratch")))
    return run, ([] if "scratch" in run.stderr else ["the message does not say it is the scratch file in TMPDIR"])


def chmod_refused(d: Path, c: Context):
    a = dng(d / "a.dng")
    run = c.microisp("develop", a, "-o", d / "out" / "a.png", env=c.shimmed(HOSTILE_NO_CHMOD="1"))
    return run, leftovers(d / "out") + ([] if (d / "out" / "a.png").exists() else ["the photo was not written"])


def latin1_tag(d: Path, c: Context):
    import pyexiv2

    a = dng(d / "a.dng", camera="Test Camera X1")
    a.write_bytes(a.read_bytes().replace(b"Test Camera X1", "Test Cam\u00e9ra X1".encode("latin-1")))
    run = c.microisp("develop", a, "-o", d / "a.jpg")
    with pyexiv2.Image(str(d / "a.jpg")) as image:
        exif = image.read_exif()
    problems = [] if exif.get("Exif.Image.Make") == "microisp" else ["the other EXIF tags were dropped"]
    return run, problems + ([] if "not UTF-8" in run.stderr else ["no warning about the tag"])


def preset(text: str):
    def case(d: Path, c: Context):
        a, p = dng(d / "a.dng"), d / "p.toml"
        p.write_text(text + "\n")
        run = c.microisp("develop", a, "-o", d / "a.png", "--preset", p)
        return run, ([] if len(run.stderr) < 1000 else [f"a message of {len(run.stderr)} characters"])
    return case


def tiny_frame(d: Path, c: Context):
    a = dng(d / "tiny.dng", h=16, w=20)
    run = c.microisp("develop", a, "-o", d / "a.png")
    return run, ([] if "too small" in run.stderr else ["the message does not say the frame is too small"])


def orientation(d: Path, c: Context):
    a = dng(d / "odd.dng", orientation=65535)
    run = c.microisp("develop", a, "-o", d / "a.png")
    return run, ([] if "Orientation" in run.stderr else ["Orientation 65535 used silently"])


def short_strip(d: Path, c: Context):
    sys.path.insert(0, str(ROOT / "tests"))  # tests/malformed.py
    from malformed import T_STRIP_BYTES, patch_tag

    a = dng(d / "short.dng")
    patch_tag(a, T_STRIP_BYTES, [84 * 60])  # half the bytes of its one 16-bit strip
    run = c.microisp("develop", a, "-o", d / "a.png")
    return run, ([] if "garbage" in run.stderr else ["developed from a short strip without a warning"])


CASES = [
    Case("1", "--json an input RAW", (2,), json_input),
    Case("1", "--json an existing file, no --overwrite", (2,), json_existing),
    Case("1", "--json a FIFO (a reader on it)", (0,), json_fifo),
    Case("1", "--json a character device", (0,), json_device, "root"),
    Case("1", "--json /dev/stdout", (0,), json_stdout),
    Case("1", "--json on a read-only file system", (2,), json_read_only, "root"),
    Case("2", "nearly full disk, PNG with 20 KB XMP", (0, 1), full_disk("png"), "root"),
    Case("2", "nearly full disk, TIFF with 20 KB XMP", (0, 1), full_disk("tif"), "root"),
    Case("2", "nearly full disk, JPEG with 20 KB XMP", (0, 1), full_disk("jpg"), "root"),
    Case("3", "no hard links, final rename fails", (1,), claim_left, "shim"),
    Case("3", "a 0-byte claim left by a killed run", (0,), stale_claim),
    Case("4", "append-only folder, new outputs", (0,), append_only_new, "root"),
    Case("4", "append-only folder, --overwrite", (1,), append_only_replace, "root"),
    Case("5", "Ctrl-C while the PNG encoder syncs", (130,), signal_during_sync(signal.SIGINT), "shim"),
    Case("5", "SIGTERM while the PNG encoder syncs", (143,), signal_during_sync(signal.SIGTERM), "shim"),
    Case("6", "SIGHUP while the PNG encoder syncs", (129,), signal_during_sync(signal.SIGHUP), "shim"),
    Case("7", "batch with a 24 MP file, ulimit -v 300 MB", (1,), memory_limit(300)),
    Case("7", "batch with a 24 MP file, ulimit -v 800 MB", (1,), memory_limit(800)),
    Case("7", "batch with a 24 MP file, ulimit -v 1800 MB", (0, 1), memory_limit(1800)),
    Case("8", "Exiv2 crashes on one file, serial", (1,), exiv2_crash(None), "shim"),
    Case("8", "Exiv2 crashes on one file, --workers 2", (1,), exiv2_crash(2), "shim"),
    Case("9", "TMPDIR on a full file system", (1,), tmpdir_full, "root"),
    Case("10", "chmod refused (vfat through FUSE)", (0,), chmod_refused, "shim"),
    Case("11", "a Latin-1 EXIF Model", (0,), latin1_tag),
    Case("12", "preset nested 100,000 deep", (2,), preset("x = " + "[" * 100_000 + "]" * 100_000)),
    Case("12", "preset with a 5000-digit integer", (2,), preset("quality = 1" + "0" * 5000)),
    Case("12", 'preset bits = "16"', (2,), preset('bits = "16"')),
    Case("12", "preset with an 800 KB value", (2,), preset('wb = "' + "a" * 800_000 + '"')),
    Case("13", "a 20x16 frame", (1,), tiny_frame),
    Case("13", "Orientation 65535", (0,), orientation),
    Case("13", "a DNG whose strip is short", (0,), short_strip),
]


def build_shim(folder: Path) -> Path | None:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        return None
    library = folder / "hostile_shim.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", library, ROOT / "tests" / "hostile_shim.c", "-ldl"],
                   check=True, capture_output=True)
    return library


def judge(case: Case, folder: Path, context: Context) -> dict:
    started = time.perf_counter()
    try:
        run, problems = case.run(folder, context)
    except subprocess.TimeoutExpired:
        return {"kept": False, "code": "-", "note": "hang (timed out)", "seconds": time.perf_counter() - started}
    problems = list(problems)
    if "Traceback" in run.stderr:
        problems.insert(0, "traceback")
    if run.code not in case.expected:
        problems.insert(0, f"exit {run.code}, expected {'/'.join(map(str, case.expected))}")
    said = [ln for ln in run.stderr.splitlines() if ln.startswith(("error:", "Error:", "warning:", "interrupted",
                                                                     "terminated", "hung up"))
            and "colour matrix" not in ln]
    note = "; ".join(problems) if problems else (said[0] if said else "")
    note = note.replace(f"{folder}/", "").replace(str(folder), ".")
    if not note and run.code == 0:
        note = "every file developed"
    return {"kept": not problems, "code": run.code, "note": note, "seconds": time.perf_counter() - started}


def table(rows: list[tuple[Case, dict | None]]) -> str:
    out = ["| # | case | exit | contract | what it said, or what broke |", "|---|---|---|---|---|"]
    for case, result in rows:
        if result is None:
            out.append(f"| {case.item} | {case.name} | - | skipped | needs {case.needs} |")
            continue
        note = result["note"].replace("|", "\\|")
        note = note if len(note) <= 150 else note[:147] + "..."
        out.append(f"| {case.item} | {case.name} | {result['code']} | {'kept' if result['kept'] else '**broken**'} "
                   f"| {note} |")
    kept = sum(1 for _, r in rows if r and r["kept"])
    ran = sum(1 for _, r in rows if r)
    out.append("")
    out.append(f"{ran} cases run, contract kept in {kept}, broken in {ran - kept}; "
               f"{len(rows) - ran} skipped.")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to run")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name}")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--exclude", action="append", default=[],
                        help="leave out cases whose name contains this (e.g. /dev/stdout for code that "
                             "would replace the system's /dev/stdout)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))  # for the file makers
    with tempfile.TemporaryDirectory(prefix="microisp-hostile-") as work:
        work = Path(work)
        context = Context(args.src.resolve(), build_shim(work))
        rows = []
        chosen = [c for c in CASES if args.k in c.name and not any(x in c.name for x in args.exclude)]
        for n, case in enumerate(chosen):
            missing = (case.needs == "root" and not ROOT_USER) or (case.needs == "shim" and context.shim is None)
            folder = work / f"case{n:02d}"
            folder.mkdir()
            result = None if missing else judge(case, folder, context)
            rows.append((case, result))
            if result is not None:
                print(f"[{case.item:>2}] {case.name}: exit {result['code']}, "
                      f"{'kept' if result['kept'] else 'BROKEN'} ({result['seconds']:.1f} s) {result['note'][:120]}",
                      file=sys.stderr)
    text = table(rows)
    print(text)
    if args.write_docs:
        docs = DOCS.read_text()
        head, _, rest = docs.partition(START)
        _, _, tail = rest.partition(END)
        DOCS.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
