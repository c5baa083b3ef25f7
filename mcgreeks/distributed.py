"""Pricing underlyings on a Dask cluster, with the same bits as in one process.

Work is split by underlying, and an underlying's main run by ranges of whole segments of paths;
segment moments come back and are merged here in path order (``engine.merge_segments``), so the
result does not depend on how many workers there are or which did what.  Workers import
mcgreeks themselves and load the compiled kernels from numba's on-disk cache.
"""
import numpy as np

from mcgreeks import engine, underlying


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


def local_client(n_workers):
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes and its client."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, env={"NUMBA_NUM_THREADS": "1"})
    return Client(cluster)
