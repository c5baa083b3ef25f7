"""The last clean-up of a command line stopped by a signal while it had local Dask workers.

Run by path, ``python -I _reaper.py <pid> <folder>...``, by ``distributed.kill_local`` just
before process <pid> exits: it waits for <pid> to end, then kills every process still carrying
<pid>'s cluster mark (``CLUSTER_MARK`` = <pid> in its environment, inherited by each worker the
cluster spawns), and once none is left removes the workers' scratch folders.

Why a process of its own: the cluster starts and restarts its workers from a thread of <pid>,
which runs until <pid>'s very end.  A worker spawned after ``kill_local`` looked for <pid>'s
children escapes that kill, outlives <pid> (workers block SIGINT and SIGTERM) and creates its
scratch folder a second later.  Only once <pid> is gone can no further worker appear.

Imports nothing of mcgreeks (whose import loads numba): it starts in tens of milliseconds.
"""
import os
import shutil
import sys
import time

#: The environment variable that marks a local cluster's processes with the pid that started it.
CLUSTER_MARK = "MCGREEKS_CLUSTER_OF"


def is_tracker(proc):
    """Whether psutil process ``proc`` is multiprocessing's resource tracker, which removes what
    a cluster's workers leave and then ends on its own: never killed."""
    return "resource_tracker" in " ".join(proc.cmdline())


def marked(pid):
    """Live processes, other than this one and the resource tracker (``is_tracker``), marked
    as <pid>'s cluster's."""
    import psutil                       # a dependency of dask.distributed
    out = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(CLUSTER_MARK) == str(pid) and not is_tracker(proc):
                out.append(proc)
        except psutil.Error:            # gone, a zombie, or not ours to read
            pass
    return out


def reap(pid, folders, timeout=10.0):
    """Wait for ``pid`` to end, kill its marked processes, then remove ``folders``."""
    import psutil
    deadline = time.monotonic() + timeout
    # <pid> is this process's parent until it exits, when this one is handed to init
    while os.getppid() == pid and time.monotonic() < deadline:
        time.sleep(0.005)
    while time.monotonic() < deadline:
        left = marked(pid)
        if not left:
            break
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=1.0)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    reap(int(sys.argv[1]), sys.argv[2:])
