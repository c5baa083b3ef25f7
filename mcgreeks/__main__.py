"""``mcgreeks`` and ``python -m mcgreeks``: start the command line.

The command line's modules (pandas, numba, the kernels' loader) take a second or more to import;
a Ctrl-C in that time (before ``cli.main`` installs its handlers) is reported in one line like
one during a run, with nothing written."""
import sys


def main():
    try:
        from mcgreeks.cli import main as run
        return run()          # which handles signals itself once it has started
    except KeyboardInterrupt:
        print("mcgreeks: interrupted (SIGINT) before writing any output file", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
