"""Many files at once on a Dask cluster: one task per file, results as they finish.

The library entry point, usable without the CLI::

    from microisp_cli.parallel import develop_files
    pairs = [("shoot/a.dng", "out/a.png"), ("shoot/b.dng", "out/b.png")]
    for result in develop_files(pairs, workers=2):              # a local cluster of 2 processes
        print(result.source, result.status, result.message)
    develop_files(pairs, scheduler="tcp://10.0.0.5:8786")       # or an existing cluster
    develop_files(pairs, client=my_client)                      # or a dask.distributed.Client

Every task runs :func:`batch_step.develop_file` on one file, the very function the serial CLI
runs, with the batch's :class:`batch_step.BatchSettings` passed whole, a runner built once per
worker thread (:func:`develop.cached_runner`) and weights shipped once per batch (one task holds
them; the file tasks depend on it). A bad file is a ``"failed"``
result, never a retry. A worker that dies mid-file (killed, out of memory) costs nothing but
time: the scheduler runs its file again on another worker (up to Dask's
``distributed.scheduler.allowed-failures``, 3 by default, then the file is reported failed);
a cluster left with no worker for ``CONNECT_TIMEOUT`` seconds fails the files not done.
Outputs are written atomically by the workers (``publish.atomic_file``); leftover temporary files
of killed attempts (and of earlier killed runs) are removed when the batch starts and ends.
Inputs, outputs and a ``--model`` file must be at the same paths on every worker (a shared file
system); paths are made absolute before they are sent.

dask.distributed is imported only when a batch runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import defaults
from .batch import check_unique_outputs
from .batch_step import DASK_PURPOSE, BatchSettings, FileResult, develop_file, scheduler_address, skip_result
from .develop import cached_runner
from .errors import ClusterError, MicroISPError, out_of_memory
from .options import DevelopOptions
from .publish import remove_stale_temporaries
from .extras import require
from .weights import Weights, load_weights

#: Prefix of the Dask task keys: ``microisp-develop-<batch>-<index in pairs>``, and the weights
#: task ``microisp-weights-<batch>`` (visible on the dashboard and to worker plugins).
KEY_PREFIX = "microisp-develop-"

#: Seconds to wait for an existing scheduler to answer, and then for its first worker.
CONNECT_TIMEOUT = 30
#: Seconds a batch waits for its next result before it asks whether the cluster still has a
#: worker; after CONNECT_TIMEOUT without any, the files not done are reported failed.
WATCH_INTERVAL = 5


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_threads(workers: int, cores: int | None = None) -> int:
    """Backend threads per worker of a local cluster of ``workers`` processes, each developing
    one file at a time: ``cores // workers``, at least 1, so workers x threads fit the cores."""
    return max(1, (cores or cpu_count()) // workers)


# --- what runs on the workers -------------------------------------------------------------------
def _weights(weights: Weights) -> Weights:
    """The weights task: its result stays on the workers, so the weights travel once per batch
    (and are recomputed from the graph if every worker holding them dies)."""
    return weights


def _develop_task(source: str, output: str, weights: Weights, settings: BatchSettings,
                  options: DevelopOptions) -> FileResult:
    """One file, on a worker: :func:`batch_step.develop_file` with this worker's runner, as
    ``settings`` say (their model path absolute, their threads decided; their ``weights`` only
    name the weights, which come from the weights task)."""
    from distributed import get_worker

    address = get_worker().address
    try:
        runner = None if options.thumbnail else cached_runner(weights, settings.backend, settings.model,
                                                              settings.threads)
    except MicroISPError as exc:  # e.g. a --model file this worker cannot read
        return FileResult(Path(source), Path(output), "failed", str(exc).replace("\n", " "),
                          worker=address)
    except Exception as exc:  # noqa: BLE001 - out of memory: this file fails, the next tries again
        failure = out_of_memory(exc, "load and compile the network")
        if failure is None:
            raise
        return FileResult(Path(source), Path(output), "failed", failure, worker=address)
    result = develop_file(source, output, weights, runner=runner, options=options, overwrite=settings.overwrite)
    return dataclasses.replace(result, worker=address)


def _host_cores() -> tuple[str, int]:
    import socket

    return socket.gethostname(), cpu_count()


# --- the client side ----------------------------------------------------------------------------
def backend_threads(client) -> int:
    """Backend threads per task for the workers of ``client``: on every host, its cores divided
    by the worker threads there (each thread develops one file), at least 1; the smallest over
    hosts."""
    cores = client.run(_host_cores)
    nthreads = client.nthreads()
    per_host: dict[str, list[int]] = {}
    for address, (host, count) in cores.items():
        per_host.setdefault(host, [count, 0])[1] += nthreads.get(address, 1)
    return min((max(1, count // max(1, used)) for count, used in per_host.values()), default=1)


#: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins glibc's mmap
#: threshold at 128 KiB: every large array of a develop is then a fresh mmap, page-faulted in and
#: unmapped again, file after file (measured: 0.6 instead of 0.2 s of system time per FullHD file,
#: about 30% more wall time). Local workers keep glibc's adaptive default.
NANNY_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

#: A local cluster closes the nanny of a worker that left the scheduler, unless a worker of the
#: same name is back ``lost-worker-timeout`` (15 s) after it left. That check is made once per
#: departure, so a worker killed twice within 15 s (or restarting more slowly than that) had its
#: nanny closed while it restarted, for good: the cluster shrank, down to no worker at all
#: (measured: 8 of 60 kills in a row; a batch then waited forever). Local workers always have a
#: nanny that restarts them, so the local cluster never gives up on one.
LOCAL_CLUSTER_CONFIG = {**NANNY_ENVIRON, "distributed.deploy.lost-worker-timeout": "3650 days"}


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """The ``LocalCluster`` of ``--workers``, open within the block: ``workers`` processes of one
    thread each, on 127.0.0.1 only, no dashboard (the scheduler's small HTTP server, which Dask
    always starts, on a free loopback port rather than 8787), glibc's malloc defaults and workers
    that are always restarted (:data:`LOCAL_CLUSTER_CONFIG`, in force while the block runs)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                         silence_logs=logging.ERROR, preload=[__name__]) as cluster:
        yield cluster


def dask_setup(worker) -> None:
    """Dask preload hook, run in each worker process of :func:`local_cluster`: ignore Ctrl-C,
    which a terminal sends to the whole process group; the client shuts the workers down (and
    they would print a traceback each)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _probe(address: str) -> None:
    """Fail at once, saying why, when nothing listens at the scheduler's address (Dask itself
    retries a refused connection until its timeout, then says only "Timed out")."""
    import socket

    host, port = scheduler_address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except socket.gaierror as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: unknown host {host} "
                           f"({exc.strerror})") from None
    except TimeoutError:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: no answer within "
                           f"{CONNECT_TIMEOUT} s") from None
    except OSError as exc:  # ConnectionRefusedError, no route to host, ...
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: "
                           f"{(exc.strerror or str(exc)).lower()}") from None


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``dask.distributed.Client``: on a new local cluster of ``workers`` processes (loopback
    only, no dashboard, one file at a time per process), closed on exit; or on the existing
    cluster whose scheduler is at ``scheduler`` (``tcp://HOST:PORT``), left running."""
    if (workers is None) == (scheduler is None):
        raise ValueError("give exactly one of workers and scheduler")
    Client = require("distributed", "dask", DASK_PURPOSE).Client
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        with contextlib.ExitStack() as stack:
            try:
                cluster = stack.enter_context(local_cluster(workers))
            except Exception as exc:  # the cluster's own errors are of many kinds
                raise ClusterError(f"cannot start a local Dask cluster: {exc}") from exc
            yield stack.enter_context(Client(cluster, set_as_default=False))
        return
    _probe(scheduler)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as exc:  # unreachable (OSError, TimeoutError) or a bad address
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise ClusterError(f"the Dask scheduler at {scheduler} has no workers "
                               f"(start some with: dask worker {scheduler})") from None
        yield client


def develop_files(pairs: Iterable[tuple[str | Path, str | Path]],
                  weights: Weights | str | Path | None = None, *, workers: int | None = None,
                  scheduler: str | None = None, client: Any = None,
                  backend: str = defaults.BACKEND, model: str | Path | None = None,
                  threads: int | None = defaults.THREADS, overwrite: bool = False,
                  on_start: Callable[[str], None] | None = None,
                  options: DevelopOptions | None = None) -> Iterator[FileResult]:
    """Develop every ``(source, output)`` pair on a Dask cluster; yield a :class:`FileResult` per
    pair as each finishes (skipped ones first, before any cluster is started).

    Where: ``workers`` (a new local cluster of that many processes), ``scheduler`` (the address
    of an existing cluster) or ``client`` (a ``dask.distributed.Client`` of yours); exactly one.
    ``threads``: backend threads per task (None: the cores of each host divided by the worker
    threads on it). ``on_start(text)``: called once the cluster is ready, with a description.
    ``options``: the :class:`options.DevelopOptions` of every file (None: the defaults). Raises :class:`MicroISPError` for
    duplicate outputs (before any work), :class:`errors.WeightsError` for unusable weights and
    :class:`ClusterError` when the cluster cannot be started or reached. Closing the generator
    early (or Ctrl-C) cancels what has not started and removes partial files.
    """
    if sum(x is not None for x in (workers, scheduler, client)) != 1:
        raise ValueError("give exactly one of workers, scheduler and client")
    settings = BatchSettings(weights, backend, model, threads, overwrite, workers, scheduler)
    yield from develop_batch(pairs, settings, client=client, on_start=on_start, options=options)


def develop_batch(pairs: Iterable[tuple[str | Path, str | Path]], settings: BatchSettings, *,
                  client: Any = None, on_start: Callable[[str], None] | None = None,
                  options: DevelopOptions | None = None) -> Iterator[FileResult]:
    """:func:`develop_files` with the batch's :class:`BatchSettings` (the executors' way): on the
    cluster of ``settings.workers`` or ``settings.scheduler``, or on ``client`` (then neither)."""
    if settings.parallel == (client is not None):
        raise ValueError("give a client or settings with workers or a scheduler, not both")
    require("distributed", "dask", DASK_PURPOSE)
    pairs = [(Path(s), Path(o)) for s, o in pairs]
    check_unique_outputs(pairs)
    todo: list[int] = []
    for index, (source, output) in enumerate(pairs):
        skipped = skip_result(source, output, settings.overwrite)
        if skipped is not None:
            yield skipped
        else:
            todo.append(index)
    if not todo:
        return
    remove_stale_temporaries(pairs[i][1] for i in todo)  # of earlier runs that were killed
    weights = settings.weights if isinstance(settings.weights, Weights) else load_weights(settings.weights)
    workers = settings.workers
    own = connect(workers, settings.scheduler) if client is None else contextlib.nullcontext(client)
    try:
        with own as client:
            threads = settings.threads
            if threads is None:
                threads = local_threads(workers) if workers is not None else backend_threads(client)
            if on_start is not None:
                where = "a local Dask cluster on 127.0.0.1" if workers is not None \
                    else f"the Dask cluster at {client.scheduler.address}"
                nthreads = client.nthreads()
                on_start(f"{len(todo)} file{'s' if len(todo) > 1 else ''} on {where}: "
                         f"{len(nthreads)} workers, {sum(nthreads.values())} files at a time, "
                         f"{threads} backend thread{'s' if threads > 1 else ''} each")
            # what every task gets: the weights travel once, as their own task (named here)
            model = None if settings.model is None else str(Path(settings.model).absolute())
            tasks = dataclasses.replace(settings, weights=weights.name, model=model, threads=threads)
            yield from _run_batch(client, pairs, todo, weights, tasks, options or DevelopOptions())
    finally:  # once a local cluster is shut down, so that none of its workers is still writing
        remove_stale_temporaries(pairs[i][1] for i in todo)


def _run_batch(client, pairs: list[tuple[Path, Path]], todo: list[int], weights: Weights,
               settings: BatchSettings, options: DevelopOptions) -> Iterator[FileResult]:
    from distributed import KilledWorker, as_completed

    batch = uuid.uuid4().hex[:12]
    weights_future = client.submit(_weights, weights, key=f"microisp-weights-{batch}", pure=False)
    futures = client.map(
        _develop_task,
        [str(pairs[i][0].absolute()) for i in todo], [str(pairs[i][1].absolute()) for i in todo],
        key=[f"{KEY_PREFIX}{batch}-{i}" for i in todo], pure=False, retries=0,
        weights=weights_future, settings=settings, options=options)
    index_of = {future.key: i for future, i in zip(futures, todo)}
    pending = set(futures)
    finished = as_completed(futures, loop=client.loop)
    checked, workerless_since, lost = time.monotonic(), None, None
    try:
        while pending:
            done = finished.next_batch(block=False)
            if not done:  # as_completed's own blocking wait polls like this too
                time.sleep(0.1)
                now = time.monotonic()
                if now - checked >= WATCH_INTERVAL:
                    checked = now
                    workerless_since = None if client.nthreads() else workerless_since or now
                if workerless_since is None or now - workerless_since < CONNECT_TIMEOUT:
                    continue
                lost, done = f"the cluster has had no worker for {CONNECT_TIMEOUT} s", list(pending)
            for future in done:
                pending.discard(future)
                source, output = pairs[index_of[future.key]]
                result = FileResult(source, output, "failed", lost) if lost \
                    else _result(future, source, output, KilledWorker)
                future.release()
                yield result
    finally:
        if pending:
            client.cancel(list(pending))
        weights_future.release()


def _result(future, source: Path, output: Path, killed_worker: type) -> FileResult:
    """The :class:`FileResult` of a finished task, with the caller's paths."""
    if future.status == "finished":
        return dataclasses.replace(future.result(), source=source, output=output)
    if future.status != "error":  # cancelled, lost
        return FileResult(source, output, "failed", f"task {future.status} (the cluster lost it)")
    exc = future.exception()
    if isinstance(exc, killed_worker):
        return FileResult(source, output, "failed",
                          "every worker that tried it died (killed, or out of memory?)")
    detail = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
    return FileResult(source, output, "failed", f"{type(exc).__name__}: {exc}", detail=detail)
