"""Pricing underlyings on a Dask cluster, with the same bits as in one process.

Work is split by underlying, and an underlying's main run by ranges of whole segments of paths;
segment moments come back and are merged here in path order (``engine.merge_segments``), so the
result does not depend on how many workers there are or which did what.  Workers import
mcgreeks themselves and load the compiled kernels from numba's on-disk cache.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref

import numpy as np

from mcgreeks import _reaper, engine, underlying


def _tasks_per_job(jobs, n_workers):
    """Segments per task: about four tasks per worker over the whole portfolio, at least one
    segment each, so large underlyings are split and small ones are not."""
    total = sum(-(-job.n_paths // engine.SEGMENT) for job in jobs)
    return max(1, -(-total // (4 * max(1, n_workers))))


def price_jobs(client, jobs, progress=None):
    """[(rows, diagnostics, totals)] per job, computed on ``client``'s cluster.

    ``progress(job)`` is called here as each job's results are merged."""
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    piloted = client.gather(client.map(underlying.pilot, jobs, pure=False))
    per_task = _tasks_per_job(piloted, n_workers) * engine.SEGMENT
    futures = []
    for job in piloted:
        ranges = [(a, min(per_task, job.n_paths - a)) for a in range(0, job.n_paths, per_task)]
        futures.append([client.submit(underlying.simulate, job, a, n, pure=False)
                        for a, n in ranges])
    results = []
    for job, parts in zip(piloted, futures):
        done = client.gather(parts)
        counts = np.concatenate([c for c, _ in done])
        states = np.concatenate([s for _, s in done])
        results.append(underlying.finish(job, counts, states))
        if progress:
            progress(job)
    return results


#: Local clusters started here and not yet closed: [client, scratch folder].
_LOCAL = []


def local_client(n_workers):
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes and its client.

    The workers keep their scratch files in a folder of their own, removed by ``close_local``
    or ``kill_local``.  They start with SIGINT and SIGTERM blocked, so a Ctrl-C, which the
    terminal sends to the whole process group, reaches only this process, which then ends them
    (``kill_local``) instead of each worker shutting down noisily on its own.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    _quiet_resource_tracker()
    # every worker the cluster spawns, now or on a restart, inherits the mark (``kill_local``)
    os.environ[_reaper.CLUSTER_MARK] = str(os.getpid())
    entry = [None, tempfile.mkdtemp(prefix="mcgreeks-dask-")]
    _LOCAL.append(entry)
    from mcgreeks.cli import in_background

    def start():
        # A thread inherits the signal mask of the thread that starts it, and a process that of
        # the thread that spawns it: the cluster's threads and workers keep these blocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            # No dashboard; the scheduler's HTTP server (health checks) on a free local port,
            # not on 8787, which another cluster may hold (Dask then warns).  The scheduler's
            # and nannies' scratch space too in the folder (Dask's default is shared, in /tmp).
            with dask.config.set({"temporary-directory": entry[1]}), _one_numba_thread():
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       env={"NUMBA_NUM_THREADS": "1"}, local_directory=entry[1],
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
                client = Client(cluster)
        except BaseException:
            _LOCAL.remove(entry)
            shutil.rmtree(entry[1], ignore_errors=True)
            raise
        # if the caller closes the cluster itself, the folder goes when it is collected or at
        # exit
        weakref.finalize(cluster, shutil.rmtree, entry[1], True)
        return client

    # Started in a thread of its own, so that this one (the main thread, in the CLI) is free
    # to take a signal while the workers start, which takes seconds.
    entry[0] = in_background(start)
    return entry[0]


@contextlib.contextmanager
def _one_numba_thread():
    """NUMBA_NUM_THREADS=1 in this process's environment while the workers are spawned.

    A spawned worker imports numba (with mcgreeks) before Dask applies the cluster's ``env``,
    so numba would size its thread pool from the machine's cores and later, on compiling a
    kernel, find the environment saying 1 and fail ("Cannot set NUMBA_NUM_THREADS to a
    different value once the threads have been launched").  Set before the spawn, the worker
    sees 1 from the start.  Restored at once: this process's own numba reads it again only
    when it compiles, and nothing compiles here while the workers start."""
    previous = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["NUMBA_NUM_THREADS"]
        else:
            os.environ["NUMBA_NUM_THREADS"] = previous


def close_local(client):
    """Close ``client`` and its local cluster, and remove the workers' scratch folder."""
    client.close()
    client.cluster.close()
    for entry in [e for e in _LOCAL if e[0] is client]:
        _LOCAL.remove(entry)
        shutil.rmtree(entry[1], ignore_errors=True)


def kill_local():
    """For a process about to exit on a signal: if it started local clusters, end its worker
    processes at once (SIGKILL: nothing to print, nothing to wait for; they may still be
    starting, so they are found as this process's children, all but multiprocessing's resource
    tracker, which removes what they leave) and remove their scratch folders.  A worker the
    cluster's thread spawns after this look outlives the process: ``_reaper``, started here,
    ends it and removes the folders again once this process is gone."""
    if not _LOCAL:
        return
    import psutil                       # a dependency of dask.distributed

    for child in psutil.Process().children(recursive=True):
        try:
            if not _reaper.is_tracker(child):
                child.kill()
        except psutil.Error:            # already gone
            pass
    folders = [entry[1] for entry in _LOCAL]
    _LOCAL.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    # -I: the reaper imports psutil alone, not this package from the working directory
    try:
        subprocess.Popen([sys.executable, "-I", _reaper.__file__, str(os.getpid()), *folders],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    except OSError:         # no interpreter to start (an embedded Python): the kill above stays
        pass


def _quiet_resource_tracker():
    """Start multiprocessing's resource tracker (which Dask's worker processes use) with its
    stderr on /dev/null.  When this process ends on a signal without closing the cluster, the
    tracker still removes the semaphores the workers' queues left, but would also print a
    warning about them on the user's terminal.  No-op if the tracker already runs."""
    from multiprocessing import resource_tracker

    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
