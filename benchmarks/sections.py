"""Marked sections of a generated report, so that one script can rewrite its part of a file
another script also writes (``<!-- name -->`` ... ``<!-- /name -->``)."""
import argparse
import os


def section(path, begin, end):
    """The marked section of an existing report, markers included ('' if none)."""
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    if begin not in text or end not in text:
        return ""
    return text[text.index(begin):text.index(end) + len(end)]


def put_section(path, text, begin, end):
    """Replace (or append) the marked section of the report with ``text`` (markers included)."""
    whole = open(path).read() if os.path.exists(path) else ""
    old = section(path, begin, end)
    whole = whole.replace(old, text) if old else whole.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as fh:
        fh.write(whole)


def report_parser(doc, root):
    """The command line of a script that writes a section of RESULTS.md: --quick, --repeats
    (default 3) and --out (default ``root``/benchmarks/results/RESULTS.md); ``doc`` is the
    script's docstring, whose first line describes it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(root, "benchmarks", "results",
                                                      "RESULTS.md"))
    return parser
