"""Stopping cleanly: SIGINT (Ctrl-C) and SIGTERM sent to a real ``mcgreeks price`` run on the
sample book, serial and on a two-worker Dask LocalCluster, while it prices.  Within 2 s the run
ends with exit 130 / 143, one line on stderr and no traceback; no output or temporary file is
left, nor a worker process or a Dask scratch folder.  And the output set itself (in-process):
files appear together or not at all."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mcgreeks import cli

DATA = Path(__file__).resolve().parents[1] / "data"
BOUND = 2.0          # seconds from the signal to the end of the process


def _group_alive(pgid):
    """Processes of process group ``pgid`` that still run (zombies awaiting reaping excluded)."""
    import psutil
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def _worker_children(pid):
    """Child processes of ``pid`` other than multiprocessing's resource tracker."""
    import psutil
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            pass
    return out


def interrupt_run(tmp_path, signum, wait, extra=(), to_group=True):
    """Start the CLI on the sample book in its own session (as a shell job), wait until
    ``wait(proc)`` returns (the stderr lines it read), send ``signum`` (to the whole group, as a
    terminal's Ctrl-C or systemd's stop does, or to the process alone), and wait for it to end.

    Returns (returncode, seconds from the signal to the end, stderr lines before the signal,
    stderr after it, the output folder's entries, the private temporary folder's entries)."""
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))      # where Dask's scratch folders would go
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcgreeks.cli", "price", DATA / "trades.csv", "--market",
         DATA / "market.csv", "--out", "r.csv", "--by", "underlying", "--risk-out",
         "risk.csv", *extra], cwd=out, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        before = wait(proc)
        sent = time.perf_counter()
        (os.killpg if to_group else os.kill)(proc.pid, signum)
        proc.wait(timeout=30)
        took = time.perf_counter() - sent
        after = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    deadline = time.perf_counter() + 2
    while _group_alive(proc.pid) and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert _group_alive(proc.pid) == [], "processes of the run outlived it"
    return (proc.returncode, took, before, after, sorted(os.listdir(out)),
            sorted(os.listdir(scratch)))


def pricing_after(name):
    """Wait until the log says underlying ``name`` is priced: the run is pricing the next."""
    def wait(proc):
        before = []
        for line in proc.stderr:
            before.append(line)
            if f"priced {name} " in line:
                return before
        raise AssertionError("the run ended before the signal: " + "".join(before))
    return wait


CASES = [
    # id, signal, exit code, words of the line, extra args, wait, to the whole group
    ("sigint-serial", signal.SIGINT, 130, "interrupted (SIGINT)", (), pricing_after("DYNA"), True),
    ("sigterm-serial", signal.SIGTERM, 143, "terminated (SIGTERM)", (), pricing_after("DYNA"),
     False),
    ("sigint-workers", signal.SIGINT, 130, "interrupted (SIGINT)", ("--workers", "2"),
     pricing_after("ACME;BOLT"), True),
    ("sigterm-workers", signal.SIGTERM, 143, "terminated (SIGTERM)", ("--workers", "2"),
     pricing_after("ACME;BOLT"), True),
]


@pytest.mark.parametrize("signum, code, words, extra, wait, to_group",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_signal_mid_run_stops_within_2s_and_leaves_nothing(tmp_path, signum, code, words, extra,
                                                           wait, to_group):
    """Serial: after DYNA the two Heston underlyings are left, seconds of numba kernels.  With
    workers: after the first underlying, the rest are in flight on the cluster."""
    returncode, took, before, after, out, scratch = interrupt_run(
        tmp_path, signum, wait, extra, to_group)
    assert returncode == code, (before, after)
    assert took < BOUND, f"{took:.2f} s from the signal to the end"
    assert "Traceback" not in "".join(before) + after
    # Jobs that finished on a worker between the wait and the signal's handling may still have
    # logged; once the handler runs, its line is the last.
    lines = after.splitlines()
    assert lines[-1:] == [f"mcgreeks: {words} before writing any output file"], after
    assert all(line.startswith("[") and "] priced " in line for line in lines[:-1]), after
    assert out == [] and scratch == []


def test_sigint_while_the_cluster_starts(tmp_path):
    """A Ctrl-C while the Dask workers are still starting (before anything is priced)."""
    def workers_spawned(proc):
        """The log says nothing while the workers start: poll for them."""
        deadline = time.perf_counter() + 120
        while not _worker_children(proc.pid):
            assert time.perf_counter() < deadline and proc.poll() is None
            time.sleep(0.02)
        return []

    returncode, took, _, after, out, scratch = interrupt_run(
        tmp_path, signal.SIGINT, workers_spawned, ("--workers", "2"))
    assert returncode == 130, after
    assert took < BOUND, f"{took:.2f} s"
    assert after.splitlines() == ["mcgreeks: interrupted (SIGINT) before writing any output file"]
    assert out == [] and scratch == []


# --- the output set, in-process -----------------------------------------------------------------

def _frame():
    return pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="trade_id"))


def test_output_set_commits_all_files_manifest_last(tmp_path):
    with cli.OutputSet() as files:
        files.add(_frame(), tmp_path / "r.csv")
        files.add(_frame(), tmp_path / "r.by_underlying.parquet")
        files.add({"k": 1}, tmp_path / "r.csv.manifest.json")
        assert all(p.name.startswith(".") for p in tmp_path.iterdir())   # only temporaries
        files.commit()
    assert sorted(os.listdir(tmp_path)) == ["r.by_underlying.parquet", "r.csv",
                                            "r.csv.manifest.json"]
    order = ["r.csv", "r.by_underlying.parquet", "r.csv.manifest.json"]
    times = [(tmp_path / p).stat().st_mtime_ns for p in order]
    assert times == sorted(times)
    assert pd.read_parquet(tmp_path / "r.by_underlying.parquet").equals(_frame())


def test_a_failing_file_leaves_none_of_the_set(tmp_path):
    (tmp_path / "r.csv").write_text("an earlier night's results\n")
    unwritable = pd.DataFrame({"x": [object(), 1]})          # pyarrow cannot store an object
    with pytest.raises(Exception):
        with cli.OutputSet() as files:
            files.add(_frame(), tmp_path / "r.csv")
            files.add(unwritable, tmp_path / "risk.parquet")
            files.commit()
    assert sorted(os.listdir(tmp_path)) == ["r.csv"]
    assert (tmp_path / "r.csv").read_text() == "an earlier night's results\n"


def test_a_signal_during_the_renames_waits_for_the_last(tmp_path):
    """A real SIGINT to this process in the middle of a commit (sent from the first rename, the
    one moment a test can pick): every file is renamed, then the run stops (Stopped, marked as
    after the commit)."""
    handler = signal.getsignal(signal.SIGINT)
    real_replace = os.replace
    calls = []

    def replace_and_signal(src, dst):
        real_replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)          # the handler has run by now (between these bytecodes)

    with cli._stop_on_signals():
        with pytest.raises(cli.Stopped) as stopped:
            with cli.OutputSet() as files:
                files.add(_frame(), tmp_path / "a.csv")
                files.add(_frame(), tmp_path / "b.csv")
                files.add({"k": 1}, tmp_path / "a.csv.manifest.json")
                os.replace = replace_and_signal
                try:
                    files.commit()
                finally:
                    os.replace = real_replace
    assert stopped.value.signum == signal.SIGINT and stopped.value.after_commit
    assert len(calls) == 3
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "a.csv.manifest.json", "b.csv"]
    assert signal.getsignal(signal.SIGINT) is handler


# --- Ctrl-C typed on a terminal -------------------------------------------------------------

def _ctrl_c_on_a_terminal(tmp_path, extra, ready):
    """Run the CLI on a pseudo-terminal that is its controlling terminal, with the progress bar
    drawn there; once ``ready(screen)``, type Ctrl-C (the terminal sends SIGINT to the whole
    foreground process group, workers included).  Returns (returncode, seconds from the
    keystroke to the end, the screen before, the screen after)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    out = tmp_path / "out"
    out.mkdir()

    def controlling_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "mcgreeks.cli", "price", DATA / "trades.csv", "--market",
         DATA / "market.csv", "--out", "r.csv", *extra], cwd=out, stdin=follower,
        stdout=follower, stderr=follower, start_new_session=True,
        preexec_fn=controlling_terminal, close_fds=True)
    os.close(follower)
    screen, after, sent = b"", b"", None
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:              # the terminal closed: every process of it ended
                break
            if not data:
                break
            if sent is None:
                screen += data
                if ready(screen.decode(errors="replace")):
                    sent = time.perf_counter()
                    os.write(leader, b"\x03")
            else:
                after += data
        proc.wait(timeout=30)
        took = time.perf_counter() - sent if sent else None
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return (proc.returncode, took, screen.decode(errors="replace"),
            after.decode(errors="replace"), os.listdir(out))


# the sample's simulation groups: ACME;BOLT (its multi-asset trades link them), CRUX, DYNA,
# then the two Heston underlyings
@pytest.mark.parametrize("extra, priced", [((), "3/5"), (("--workers", "2"), "1/5")],
                         ids=["serial", "workers"])
def test_ctrl_c_on_a_terminal(tmp_path, extra, priced):
    """What the issue saw: Ctrl-C on a terminal, progress bar drawn, Dask workers in the same
    process group.  Now: exit 130 within 2 s, the bar and one line, no traceback or warning."""
    code, took, before, after, written = _ctrl_c_on_a_terminal(
        tmp_path, extra, lambda screen: priced in screen)
    assert took is not None, "the run ended before Ctrl-C: " + before
    assert code == 130, before + after
    assert took < BOUND, f"{took:.2f} s"
    text = after.replace("\r", "\n")
    lines = [line for line in text.split("\n") if line.strip() and "underlying" not in line
             and line.strip() != "^C"]
    assert lines == ["mcgreeks: interrupted (SIGINT) before writing any output file"], after
    assert "Traceback" not in before + after and "distributed" not in before + after
    assert written == []
