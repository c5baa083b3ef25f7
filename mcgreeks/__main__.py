"""``mcgreeks`` and ``python -m mcgreeks``: start the command line.

The arguments are parsed first (``arguments``, which imports nothing heavy), so ``--help``,
``--version`` and a usage error answer at once.  Only then are the command line's modules
imported (pandas, numba, the kernels' loader: a second or more); a Ctrl-C in that time (before
``cli.execute`` installs its handlers) is reported in one line like one during a run, with
nothing written.

Once the command has returned, its files are written and closed, so the process ends at once
(``end_process``): the interpreter's own shutdown would otherwise run garbage collections over the
hundreds of thousands of objects pandas, numba and the loaded kernels leave, 0.3-0.45 s of a
sample-book run on 2026-12-07's EPYC (``perf``: ``gc_collect_main`` after ``main`` returned)."""
import atexit
import os
import sys


def main():
    try:
        from mcgreeks.arguments import parse
        args = parse()
        from mcgreeks.cli import execute
        return execute(args)          # which handles signals itself once it has started
    except KeyboardInterrupt:
        print("mcgreeks: interrupted (SIGINT) before writing any output file", file=sys.stderr)
        return 130


def end_process(status):
    """End the process with ``status`` (None: 0) after the exit handlers libraries registered
    (``atexit``: logging's flush, a Dask client's close) and with the standard streams flushed,
    skipping the interpreter's teardown.  Only a whole command line may do this, never a
    function a user's program calls."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: nothing more reaches it anyway
            pass
    os._exit(status or 0)


def console():
    """The ``mcgreeks`` command (``[project.scripts]``)."""
    end_process(main())


if __name__ == "__main__":
    console()
