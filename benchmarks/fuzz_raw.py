"""Fuzz campaign: mutated DNGs through the library's ``develop_to_file``, each in a sandboxed worker.

    python benchmarks/fuzz_raw.py --cases 1000 --seed 1 --workers 2 --out runs/fuzz

What it does, deterministically for a given ``--seed`` (case ``i`` draws from its own random stream):

1. Seed files: small synthetic DNGs written with :func:`microisp_cli.training.dng.write_dng` (all four
   CFA orders, with and without ColorMatrix1/AsShotNeutral, 10 to 16 bits, odd and even sizes) and
   the real DNGs of ``../shared/data/raw`` when present.
2. Mutations, one kind per case in rotation (``KINDS``): bit flips (metadata or anywhere), truncation,
   random byte runs, and TIFF tag corruption done in place by a small IFD walker: huge / zero frame
   sizes, strip and tile offsets, bit depth and compression, CFARepeatPatternDim and CFAPattern,
   black and white levels (zero, inverted, huge), NaN / inf / zero-denominator rationals (also as
   tags retyped to DOUBLE or FLOAT holding NaN and inf), absurd and singular colour matrices, absurd
   AsShotNeutral, IFD loops and bogus counts, orientation and crop tags; plus metadata that is
   absurd but well-formed, written directly by ``write_dng``; and stacks of 2 to 4 of these.
3. Each case runs in a long-lived worker process (``--workers``, default 1) under
   ``RLIMIT_AS`` (``--memory-mb``): TensorFlow is imported once per worker, the case runs
   ``develop_to_file`` into a folder of its own, and the worker answers one JSON line. A case that
   does not answer within ``--timeout`` seconds is a *hang*; a worker that dies is a *signal* (or an
   *exit*) attributed to the case it was running; either way the worker is restarted.

4. With ``--kinds``, also (or only) the classes of :mod:`fuzz_classes`: hostile file names,
   special files, ``.npy`` headers, weights manifests, ``.tflite`` bytes, option values and
   same-file outputs, each a ``microisp develop`` command line run in the worker in-process and
   judged by the contract (exit code 0/1/2, no traceback, every line of a known form with names
   escaped, inputs unchanged, no files left behind).

Outcomes per case: ``developed``, ``typed`` (a :class:`MicroISPError` subclass, message on one
line), ``traceback`` (any other exception), ``multiline`` (typed, but the message spans lines),
``signal``, ``exit``, ``hang``; plus ``leftover`` when a failed case left files in its output folder.
The report (JSON, and a Markdown table with ``--markdown``) counts them per mutation kind.
Files of cases that were not a developed or typed outcome are kept under ``OUT/repro/``.

Modules: this file runs the campaign (workers, report); ``fuzz_mutations`` makes the seeds and
the mutated files (with the TIFF patcher of ``tests/malformed.py``, which the tests
share), ``fuzz_worker`` is the child process, ``fuzz_classes`` the hostile command lines.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_classes import CLI_KINDS, Assets, make_cli_case  # noqa: E402
from fuzz_mutations import KINDS, ROOT, make_case, make_seeds  # noqa: E402
from fuzz_worker import SELFTESTS, worker_main  # noqa: E402

# --- the campaign (the parent process) -------------------------------------------------------
class Worker:
    """A worker subprocess and the case it is running."""

    def __init__(self, index: int, args: argparse.Namespace, log_dir: Path):
        self.index, self.args, self.log_dir = index, args, log_dir
        self.proc: subprocess.Popen | None = None
        self.case: dict | None = None
        self.started = 0.0
        self.buffer = b""
        self.restarts = -1

    def start(self) -> None:
        self.restarts += 1
        log = open(self.log_dir / f"worker{self.index}.log", "ab")
        cmd = [sys.executable, __file__, "--worker", "--memory-mb", str(self.args.memory_mb),
               "--tile-size", str(self.args.tile_size), "--threads", str(self.args.threads),
               "--max-megapixels", str(self.args.max_megapixels)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     cwd=ROOT, start_new_session=True)
        log.close()
        self.buffer = b""
        ready = self._read_line(self.args.startup_timeout)
        if ready is None or not json.loads(ready).get("ready"):
            raise RuntimeError(f"worker {self.index} did not start; see {self.log_dir}/worker{self.index}.log")

    def _read_line(self, timeout: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_READ)
            ready = sel.select(left)
            sel.close()
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def send(self, case: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.case, self.started = case, time.monotonic()
        job = {k: case[k] for k in ("case", "path", "output", "selftest", "argv", "cwd", "inputs") if k in case}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the worker and its children
        if self.proc is not None:
            self.proc.wait()


def _stderr_tail(log: Path, lines: int = 8) -> str:
    try:
        return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_campaign(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("seeds", "cases", "outputs", "repro", "logs"):
        (out / sub).mkdir(parents=True)
    t0 = time.monotonic()
    seeds = make_seeds(out / "seeds", args.seed, not args.no_real)
    kinds = selected_kinds(args.kinds)
    assets = Assets(out / "assets", args.seed) if set(kinds) & set(CLI_KINDS) else None
    pending = []
    for i in range(args.cases):
        kind = kinds[i % len(kinds)]
        if kind in CLI_KINDS:
            case_dir = out / "cases" / f"{i:05d}"
            made = make_cli_case(kind, random.Random(f"{args.seed}:{i}"), assets, case_dir)
            pending.append(dict(case=i, kind=kind, seed="cli", mutation=made.pop("description"),
                                path=str(case_dir), **made))
            continue
        kind, seed_name, what, data = make_case(i, args.seed, seeds, out / "cases", kind)
        path = out / "cases" / f"{i:05d}.dng"
        path.write_bytes(data)
        pending.append(dict(case=i, kind=kind, seed=seed_name, mutation=what, path=str(path),
                            output=str(out / "outputs" / f"{i:05d}" / "developed.png")))
        (out / "outputs" / f"{i:05d}").mkdir()
    (out / "cases" / "synthetic.dng").unlink(missing_ok=True)
    for k, what in enumerate(SELFTESTS if args.self_test else ()):
        i = args.cases + k
        path = out / "cases" / f"{i:05d}.dng"
        path.write_bytes(seeds[0].data)
        pending.append(dict(case=i, kind="self-test", seed=seeds[0].name, mutation=what, selftest=what,
                            path=str(path), output=str(out / "outputs" / f"{i:05d}" / "developed.png")))
        (out / "outputs" / f"{i:05d}").mkdir()
    generated = time.monotonic() - t0
    workers = [Worker(k, args, out / "logs") for k in range(args.workers)]
    for w in workers:
        w.start()
    results: list[dict] = []
    queue = collections.deque(pending)

    def finish(w: Worker, result: dict) -> None:
        case = w.case
        assert case is not None
        result = {**case, **result}
        if "argv" in case:  # a command line: judged (leftovers too) by the worker
            if result["outcome"] != "cli" or result.get("leftover"):
                shutil.copytree(case["path"], out / "repro" / Path(case["path"]).name, symlinks=True,
                                ignore_dangling_symlinks=True, dirs_exist_ok=True,
                                ignore=lambda d, names: [n for n in names if _special(os.path.join(d, n))])
            if not args.keep:
                shutil.rmtree(case["path"], ignore_errors=True)
            results.append(result)
            w.case = None
            if args.verbose or result["outcome"] != "cli" or result.get("leftover"):
                print(f"[{len(results)}/{len(pending)}] case {case['case']} {case['kind']}: {result['outcome']} "
                      f"{result.get('error', '')} | {case['mutation'][:100]}", flush=True)
            return
        folder = Path(case["output"]).parent
        left = sorted(p.name for p in folder.iterdir())
        if result["outcome"] != "developed" and left:
            result["leftover"] = left
        if result["outcome"] == "developed" and left != ["developed.png"]:
            result["leftover"] = left
        if result["outcome"] not in ("developed", "typed"):
            shutil.copy(case["path"], out / "repro" / Path(case["path"]).name)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            Path(case["path"]).unlink(missing_ok=True)
        results.append(result)
        w.case = None
        if args.verbose or result["outcome"] not in ("developed", "typed"):
            print(f"[{len(results)}/{len(pending)}] case {case['case']} {case['kind']}: {result['outcome']} "
                  f"{result.get('error', '')} {result.get('message', '')[:120]}", flush=True)
        elif len(results) % 50 == 0:
            print(f"[{len(results)}/{len(pending)}] {time.monotonic() - t0:.0f} s", flush=True)

    idle = list(workers)
    busy: list[Worker] = []
    while queue or busy:
        while idle and queue:
            w = idle.pop()
            w.send(queue.popleft())
            busy.append(w)
        sel = selectors.DefaultSelector()
        for w in busy:
            sel.register(w.proc.stdout.fileno(), selectors.EVENT_READ, w)
        wait = max(0.05, min(w.started + args.timeout for w in busy) - time.monotonic())
        ready = {key.data for key, _ in sel.select(wait)}
        sel.close()
        for w in list(busy):
            if w in ready:
                chunk = os.read(w.proc.stdout.fileno(), 65536)
                if not chunk:  # end of file: the worker died while running its case
                    code = w.proc.wait()
                    tail = _stderr_tail(out / "logs" / f"worker{w.index}.log")
                    if code < 0:
                        result = dict(outcome="signal", error=signal.Signals(-code).name, stderr=tail)
                    else:
                        result = dict(outcome="exit", error=f"exit status {code}", stderr=tail)
                    result["seconds"] = round(time.monotonic() - w.started, 3)
                    finish(w, result)
                    busy.remove(w)
                    w.start()
                    idle.append(w)
                    continue
                w.buffer += chunk
                if b"\n" in w.buffer:
                    line, w.buffer = w.buffer.split(b"\n", 1)
                    finish(w, json.loads(line))
                    busy.remove(w)
                    idle.append(w)
            elif time.monotonic() - w.started > args.timeout:
                w.kill()
                finish(w, dict(outcome="hang", error=f"no answer in {args.timeout:g} s",
                               seconds=round(time.monotonic() - w.started, 3)))
                busy.remove(w)
                w.start()
                idle.append(w)
    for w in workers:
        if w.proc is not None and w.proc.stdin is not None:
            w.proc.stdin.close()
        w.proc.wait(timeout=60)
    wall = time.monotonic() - t0
    results.sort(key=lambda r: r["case"])
    report = dict(command=" ".join(["python", "benchmarks/fuzz_raw.py"] + sys.argv[1:]), seed=args.seed,
                  cases=len(results), wall_seconds=round(wall, 1), generate_seconds=round(generated, 1),
                  memory_limit_mb=args.memory_mb, timeout_s=args.timeout, workers=args.workers,
                  worker_restarts=sum(w.restarts for w in workers),
                  max_vm_peak_mb=max((r.get("vm_peak_mb", 0) for r in results), default=0),
                  max_rss_peak_mb=max((r.get("rss_peak_mb", 0) for r in results), default=0),
                  seeds=[s.name for s in seeds], results=results)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def _special(path: str) -> bool:
    import stat

    try:
        return not (stat.S_ISREG(os.lstat(path).st_mode) or stat.S_ISDIR(os.lstat(path).st_mode)
                    or os.path.islink(path))
    except OSError:
        return True


def selected_kinds(text: str) -> list[str]:
    """``--kinds``: ``all``, ``raw`` (the mutated DNGs), ``cli`` (the command-line classes) or a
    comma-separated list of kind names."""
    groups = {"raw": KINDS, "cli": CLI_KINDS, "all": KINDS + CLI_KINDS}
    kinds = [k for part in text.split(",") for k in groups.get(part, [part])]
    unknown = sorted(set(kinds) - set(KINDS) - set(CLI_KINDS))
    if unknown:
        raise SystemExit(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS + CLI_KINDS)}")
    return kinds


def markdown_cli(report: dict) -> str:
    """The command-line classes: exit codes and every way of breaking the contract, per class."""
    results = [r for r in report["results"] if r["kind"] in CLI_KINDS]
    if not results:
        return ""
    labels = ["exit 0", "exit 1", "exit 2", "traceback", "exit", "unescaped", "stray line",
              "input changed", "signal", "hang"]
    head = "| class | cases | " + " | ".join(labels) + " | files left behind |"
    lines = [head, "|" + "---|" * (len(labels) + 3)]
    rows = [k for k in CLI_KINDS if any(r["kind"] == k for r in results)] + ["**all**"]
    for kind in rows:
        mine = [r for r in results if kind == "**all**" or r["kind"] == kind]
        c = collections.Counter(r["error"] if r["outcome"] == "cli" else r["outcome"] for r in mine)
        cells = [str(len(mine))] + [str(c[lab]) for lab in labels] + [str(sum(1 for r in mine if r.get("leftover")))]
        if kind == "**all**":
            cells = [f"**{x}**" for x in cells]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outcome_label(r: dict) -> str:
    return f"typed: {r['error']}" if r["outcome"] == "typed" else r["outcome"]


def markdown(report: dict) -> str:
    results = [r for r in report["results"] if r["kind"] in KINDS]
    labels = ["developed"] + sorted({outcome_label(r) for r in results if r["outcome"] == "typed"}) + \
        ["multiline", "traceback", "signal", "exit", "hang"]
    per_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        per_kind[r["kind"]][outcome_label(r)] += 1
    head = "| mutation | cases | " + " | ".join(labels) + " |"
    lines = [head, "|" + "---|" * (len(labels) + 2)]
    for kind in [k for k in KINDS if k in per_kind]:
        c = per_kind.get(kind, collections.Counter())
        lines.append(f"| {kind} | {sum(c.values())} | " + " | ".join(str(c[lab]) for lab in labels) + " |")
    total = collections.Counter(outcome_label(r) for r in results)
    lines.append(f"| **all** | **{len(results)}** | " + " | ".join(f"**{total[lab]}**" for lab in labels) + " |")
    leftovers = sum(1 for r in results if r.get("leftover"))
    warned = sum(1 for r in results if r.get("warnings"))
    lines = lines if results else []
    cli = markdown_cli(report)
    lines += ["", cli] if cli else []
    lines += ["", f"Wall time {report['wall_seconds']:.0f} s ({report['workers']} worker(s), "
              f"{report['worker_restarts']} restart(s)); outputs left behind by failed cases: {leftovers}; "
              f"cases with a fallback warning: {warned}; largest worker peak: "
              f"{report['max_rss_peak_mb']} MB resident, {report['max_vm_peak_mb']} MB virtual "
              f"(limit {report['memory_limit_mb']} MB)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per case before it is a hang")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--memory-mb", type=int, default=4096, help="RLIMIT_AS of each worker")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-megapixels", type=float, default=0, help="0: the library default")
    parser.add_argument("--kinds", default="raw",
                        help="raw (mutated DNGs), cli (the command-line classes), all, or kind names, "
                             "comma-separated; cases rotate over them")
    parser.add_argument("--out", default="runs/fuzz")
    parser.add_argument("--no-real", action="store_true", help="synthetic seeds only")
    parser.add_argument("--keep", action="store_true", help="keep every case file and output")
    parser.add_argument("--markdown", action="store_true", help="print the results table")
    parser.add_argument("--verbose", action="store_true", help="a line per case")
    parser.add_argument("--self-test", action="store_true",
                        help="add cases that crash, hang, raise and leave a file, to check the harness")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    report = run_campaign(args)
    checks = [r for r in report["results"] if r["kind"] == "self-test"]
    for r in checks:
        ok = r["outcome"] == SELFTESTS[r["selftest"]] and (r["selftest"] != "leftover" or r.get("leftover"))
        print(f"self-test {r['selftest']}: reported as {r['outcome']} {r.get('error', '')} "
              f"{'leftover ' + str(r.get('leftover')) if r.get('leftover') else ''}: {'ok' if ok else 'WRONG'}")
    bad = [r for r in report["results"] if r["kind"] != "self-test"
           and (r["outcome"] not in ("developed", "typed", "cli") or r.get("leftover"))]
    print(markdown(report) if args.markdown else json.dumps({k: v for k, v in report.items() if k != "results"}))
    print(f"{len(bad)} finding(s); report: {Path(args.out) / 'report.json'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
