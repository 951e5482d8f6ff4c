"""parallel.py and ``microisp develop --scheduler``: a real Dask LocalCluster on loopback.

Two worker processes with one thread each, no dashboard, bound to 127.0.0.1. The serial path is
the reference: outputs must be byte-equal. The fault case kills a worker process (SIGKILL) while
it develops a file and checks that the file is developed again by another worker, whole.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers import develop, small_dng
from microisp_cli import defaults
from microisp_cli.batch_step import BatchSettings, develop_file
from microisp_cli.develop import cached_runner
from microisp_cli.errors import MicroISPError
from microisp_cli.parallel import KEY_PREFIX, develop_batch, develop_files, local_cluster
from microisp_cli.weights import load_weights

distributed = pytest.importorskip("distributed")


def _runner_id() -> int:
    """On a worker: the identity of the runner its tasks use (built on first use)."""
    return id(cached_runner(load_weights(), defaults.BACKEND, None, 1))


#: Per worker address: the future of its runner's identity, built when the cluster starts.
WARMUP: dict[str, object] = {}


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    # what --workers 2 starts: a LocalCluster of 2 processes x 1 thread, loopback only
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        assert sorted(client.nthreads().values()) == [1, 1]
        assert len(set(client.run(os.getpid).values()) | {os.getpid()}) == 3  # processes
        listening = [cluster.scheduler_address, *client.nthreads(),
                     *(f"http://127.0.0.1:{port}" for port in client.scheduler_info()["services"].values())]
        assert all(a.split("://")[1].startswith("127.0.0.1:") for a in listening), listening
        # build each worker's runner now, while the test process builds its own (same key as
        # the tasks': default weights and backend, no model, 1 thread = 2 cores / 2 worker threads)
        WARMUP.update({address: client.submit(_runner_id, workers=[address], pure=False)
                       for address in client.nthreads()})
        yield client


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shoot")
    (folder / "day2").mkdir()
    for i, (cfa, h, w) in enumerate([("RGGB", 120, 160), ("GBRG", 97, 131), ("BGGR", 160, 120)]):
        small_dng(folder / f"img{i}.dng", h, w, cfa, i)
    small_dng(folder / "day2" / "img3.dng", 100, 150, "GRBG", 3)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_scheduler_equals_serial_skip_and_overwrite(tmp_path, shoot, client):
    address = client.scheduler.address
    serial = develop(shoot, "-o", tmp_path / "serial", "--threads", "1")
    assert serial.exit_code == 0 and "4 done, 0 skipped, 0 failed" in serial.output, serial.output
    parallel = develop(shoot, "-o", tmp_path / "parallel", "--scheduler", address)
    assert parallel.exit_code == 0 and "4 done, 0 skipped, 0 failed" in parallel.output, parallel.output
    assert "2 workers, 2 files at a time, 1 backend thread each" in parallel.output
    assert _files(tmp_path / "parallel") == _files(tmp_path / "serial")  # byte-equal PNGs, no .part
    assert sorted(_files(tmp_path / "parallel")) == ["day2/img3.png", "img0.png", "img1.png", "img2.png"]

    # the runner was built once per worker: the warm-up's runner is the one the tasks used
    warm = {address: future.result() for address, future in WARMUP.items()}
    again = {a: client.submit(_runner_id, workers=[a], pure=False).result() for a in warm}
    assert again == warm

    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "parallel").rglob("*.png")}
    result = develop(shoot, "-o", tmp_path / "parallel", "--scheduler", address)
    assert result.exit_code == 0 and "0 done, 4 skipped, 0 failed" in result.output
    assert f"skipped {shoot / 'img0.dng'}: {tmp_path / 'parallel' / 'img0.png'} exists" in result.output
    assert {p: p.stat().st_mtime_ns for p in before} == before
    result = develop(shoot, "-o", tmp_path / "parallel", "--scheduler", address, "--overwrite")
    assert result.exit_code == 0 and "4 done, 0 skipped, 0 failed" in result.output
    assert result.output.count("(replaced,") == 4
    assert _files(tmp_path / "parallel") == _files(tmp_path / "serial")


def test_bad_files_fail_alone(tmp_path, shoot, client):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.dng").write_text("shopping list\n")
    blob = (shoot / "img0.dng").read_bytes()
    (bad / "cut.dng").write_bytes(blob[:len(blob) // 3])
    result = develop(shoot / "img0.dng", bad / "notes.dng", bad / "cut.dng", tmp_path / "missing.dng",
                 "-o", tmp_path / "out", "--scheduler", client.scheduler.address)
    assert result.exit_code == 1, result.output
    errors = sorted(ln for ln in result.output.splitlines() if ln.startswith("error:"))
    expected = [(bad / "cut.dng", "truncated or unreadable RAW file"),
                (bad / "notes.dng", "a text file, not a RAW image"),
                (tmp_path / "missing.dng", "no such file or directory")]  # the serial path's messages
    assert len(errors) == 3, result.output
    for line, (path, cause) in zip(errors, expected):
        assert line.startswith(f"error: {path}: ") and cause in line, result.output
    assert "1 done, 0 skipped, 3 failed" in result.output and "Traceback" not in result.output
    assert sorted(_files(tmp_path / "out")) == ["img0.png"]

    # in the library: a bad file is a "failed" result of its task (no exception, no retry)
    results = list(develop_files([(bad / "notes.dng", tmp_path / "lib" / "notes.png"),
                                  (shoot / "img1.dng", tmp_path / "lib" / "img1.png")], client=client))
    by_name = {r.source.name: r for r in results}
    assert by_name["notes.dng"].status == "failed" and by_name["notes.dng"].worker in client.nthreads()
    assert by_name["img1.dng"].status == "done"
    assert sorted(_files(tmp_path / "lib")) == ["img1.png"]


def test_the_tasks_get_the_batch_settings_whole(tmp_path, shoot, client, monkeypatch):
    """``develop_batch`` sends every task the batch's :class:`BatchSettings`: ``overwrite`` is
    what the task's step reads, and a ``model`` path given relative to this process's folder
    reaches the workers (whose folder is another) made absolute."""
    existing = tmp_path / "img0.png"
    existing.write_bytes(b"an older develop")
    [result] = develop_batch([(shoot / "img0.dng", existing)], BatchSettings(overwrite=True), client=client)
    assert result.status == "done" and result.replaced and result.worker in client.nthreads()
    assert existing.read_bytes().startswith(b"\x89PNG")
    monkeypatch.chdir(tmp_path)
    settings = BatchSettings(backend="tflite", model="missing.tflite")
    [result] = develop_batch([(shoot / "img1.dng", tmp_path / "img1.png")], settings, client=client)
    assert result.status == "failed" and f"{tmp_path / 'missing.tflite'}: cannot be read" in result.message
    with pytest.raises(ValueError, match="not both"):
        next(develop_batch([(shoot / "img1.dng", tmp_path / "x.png")], BatchSettings(workers=2), client=client))


def test_duplicate_outputs_are_refused(tmp_path, shoot, client):
    with pytest.raises(MicroISPError, match="would both be written to"):
        next(develop_files([(shoot / "img0.dng", tmp_path / "x.png"),
                            (shoot / "img1.dng", tmp_path / "sub" / ".." / "x.png")], client=client))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_worker_killed_mid_file_loses_nothing(tmp_path, client):
    """SIGKILL the worker process running a file: the file is developed again on another worker."""
    markers = tmp_path / "markers"
    markers.mkdir()

    class MarkExecuting(distributed.WorkerPlugin):
        """Test probe: writes ``<pid>`` holding the task key when a develop task starts."""

        def __init__(self, folder: str):
            self.folder = folder

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith(KEY_PREFIX):
                partial = Path(self.folder, f".{os.getpid()}")   # renamed whole: never read half-written
                partial.write_text(str(key))
                os.replace(partial, Path(self.folder, f"{os.getpid()}"))

    client.register_plugin(MarkExecuting(str(markers)), name="mark-executing")
    pids = client.run(os.getpid)  # worker address -> pid
    # two files, one per worker, each long enough (a second or more) to be killed mid-way; the
    # killed worker's file goes to the other, warm worker while the nanny restarts the victim
    sources = [small_dng(tmp_path / f"big{i}.dng", 800, 1200, "RGGB", 10 + i) for i in range(2)]
    pairs = [(s, tmp_path / "out" / (s.stem + ".png")) for s in sources]
    killed: dict[str, object] = {}

    def kill_first_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for marker in markers.glob("[0-9]*"):
                killed.update(pid=int(marker.name), key=marker.read_text())
                os.kill(killed["pid"], signal.SIGKILL)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_running)
    killer.start()
    results: list = []
    batch = threading.Thread(target=lambda: results.extend(develop_files(pairs, client=client)),
                             daemon=True)  # a batch that never ends fails the test, not the run
    batch.start()
    batch.join(300)
    killer.join()
    assert not batch.is_alive(), "the batch did not end within 300 s of the kill"
    client.unregister_worker_plugin("mark-executing")
    assert killed, "no task started"
    victim = next(address for address, pid in pids.items() if pid == killed["pid"])
    index = int(str(killed["key"]).rsplit("-", 1)[1])
    assert sorted(r.status for r in results) == ["done"] * 2, results
    redone = next(r for r in results if r.source == sources[index])
    assert redone.worker != victim  # developed again, by another worker process
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big0.png", "big1.png"]

    # the file developed after the kill is whole and equal to the serial result
    weights = load_weights()
    reference = develop_file(sources[index], tmp_path / "serial.png", weights,
                             runner=cached_runner(weights, defaults.BACKEND, None, 1))
    assert reference.status == "done"
    assert (tmp_path / "serial.png").read_bytes() == redone.output.read_bytes()
    shutil.rmtree(markers)


def _pid_of_worker(client) -> int:
    return next(iter(client.run(os.getpid).values()))


@pytest.mark.slow
def test_local_worker_killed_twice_is_restarted():
    """A worker killed, restarted and killed again 14.5 s later (its restart then spans the 15 s
    after which Dask's cluster checks that a worker of that name came back) is restarted again,
    rather than its nanny closed for good (which left the cluster with no worker)."""
    from distributed import Client

    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        os.kill(_pid_of_worker(client), signal.SIGKILL)
        first = time.monotonic()
        client.wait_for_workers(1, timeout=60)
        time.sleep(max(0.0, first + 14.5 - time.monotonic()))
        os.kill(_pid_of_worker(client), signal.SIGKILL)
        time.sleep(3)  # past the 15 s
        client.wait_for_workers(1, timeout=60)
        time.sleep(16)  # past the second kill's 15 s
        assert len(client.nthreads()) == 1


def test_batch_on_a_cluster_without_workers_fails_its_files(tmp_path, shoot, monkeypatch):
    """A cluster with no worker left: the files are reported failed, the batch ends."""
    from distributed import Client, LocalCluster

    from microisp_cli import parallel

    monkeypatch.setattr(parallel, "WATCH_INTERVAL", 0.2)
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        results = list(develop_files([(shoot / "img0.dng", tmp_path / "img0.png"),
                                      (shoot / "img1.dng", tmp_path / "img1.png")], client=client))
    assert [r.status for r in results] == ["failed"] * 2
    assert all(r.message.startswith("the cluster has had no worker for") for r in results), results
    assert not list(tmp_path.iterdir())
