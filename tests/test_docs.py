"""The documentation in docs/ against the code: every column the library can return, every
command-line flag, every link and anchor, and no reference to a file users do not have.

The columns are collected from real calls (a small book with GBM and Heston underlyings and every
payoff), not from constants, so a column added to the code without a line in docs/ fails here.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mcgreeks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Folders that are not part of the project's text (tool state, caches, build output).
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", "build", "dist", ".venv", "venv"}


def _doc_text():
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))


def _code_spans(text):
    """Every `code span` of the markdown, as written between the backticks."""
    return set(re.findall(r"`([^`\n]+)`", text))


def _book():
    """Trades of every payoff (both barrier monitorings, all four barrier types) on one GBM and
    one Heston underlying, plus one bad row, priced with on_error="skip"."""
    payoffs = [
        dict(payoff="european", option_type="call"),
        dict(payoff="digital", option_type="put", cash=5.0),
        dict(payoff="asian_arithmetic", option_type="call", n_fixings=4),
        dict(payoff="asian_geometric", option_type="put", n_fixings=4),
        dict(payoff="barrier", option_type="call", barrier=130.0, barrier_type="up_out",
             monitoring="discrete", n_fixings=4),
        dict(payoff="barrier", option_type="put", barrier=80.0, barrier_type="down_in",
             monitoring="continuous"),
        dict(payoff="lookback", option_type="put", n_fixings=4),
    ]
    rows = []
    for name in ("G", "H"):
        for i, p in enumerate(payoffs):
            rows.append(dict(trade_id=f"{name}{i}", underlying=name, strike=100.0,
                             maturity=0.5, quantity=(-1.0) ** i, **p))
    rows.append(dict(trade_id="BAD", underlying="G", payoff="european", option_type="call",
                     strike=-1.0, maturity=0.5))
    market = pd.DataFrame([
        dict(underlying="G", model="gbm", spot=100.0, rate=0.03, div_yield=0.01, vol=0.25),
        dict(underlying="H", model="heston", spot=100.0, rate=0.03, div_yield=0.0, v0=0.04,
             kappa=2.0, vbar=0.04, xi=0.3, corr=-0.6),
    ])
    return pd.DataFrame(rows), market


@pytest.fixture(scope="module")
def priced():
    """(results, diagnostics, risk or None): risk is None while price_portfolio does not take
    ``risk=`` yet."""
    trades, market = _book()
    kwargs = dict(n_paths=2048, seed=3, steps_per_year=12, on_error="skip", diagnostics=True)
    try:
        results, risk, diagnostics = mcgreeks.price_portfolio(trades, market, risk=True, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        (results, diagnostics), risk = mcgreeks.price_portfolio(trades, market, **kwargs), None
    return results, diagnostics, risk


def _undocumented(names):
    spans = _code_spans(_doc_text())
    return sorted(str(n) for n in names if str(n) not in spans)


def test_every_results_column_is_documented(priced):
    results, diagnostics, _ = priced
    assert results.loc["BAD", "error"] != ""          # the book did exercise a failed row
    assert results["error"].drop("BAD").eq("").all()  # and priced all the others
    # every Greek of both models came back (else the test would miss their columns)
    for column in ("price", "vega", "d_xi", "method_d_corr", "theta_se", "warning"):
        assert column in results.columns
    names = list(results.columns) + [results.index.name]
    assert _undocumented(names) == []


def test_every_diagnostics_column_is_documented(priced):
    _, diagnostics, _ = priced
    assert len(diagnostics) > 0
    names = list(diagnostics.columns) + list(diagnostics.index.names)
    assert _undocumented(names) == []
    # the values the docs name for the quantity level and the control
    assert _undocumented(set(diagnostics.index.get_level_values("quantity"))) == []
    assert _undocumented(set(diagnostics["control"]) - {""}) == []


def test_every_aggregate_column_is_documented(priced):
    results, _, _ = priced
    table = mcgreeks.aggregate(results)
    assert "total" in table.index
    names = list(table.columns) + [table.index.name, "total"]
    assert _undocumented(names) == []
    assert _undocumented([mcgreeks.aggregate(results, by=None).index.name]) == []


def test_every_risk_column_is_documented(priced):
    _, _, risk = priced
    if risk is None:
        pytest.skip("price_portfolio does not take risk= yet")
    assert len(risk) > 0
    names = list(risk.columns) + list(set(risk["measure"])) + list(set(risk["method"]) - {""})
    assert _undocumented(names) == []
    aggregated = mcgreeks.aggregate_risk(risk)
    assert _undocumented(list(aggregated.columns) + ["total"]) == []


def test_every_estimator_and_method_value_is_documented(priced):
    results, _, _ = priced
    methods = {v for c in results.columns if c.startswith("method_") for v in results[c]} - {""}
    assert methods                                  # the book exercised estimators
    from mcgreeks.greeks import ESTIMATORS
    assert _undocumented(methods | set(ESTIMATORS)) == []


def test_price_option_fields_are_documented():
    if not hasattr(mcgreeks, "price_option"):
        pytest.skip("mcgreeks.price_option does not exist yet")
    result = mcgreeks.price_option(payoff="european", option_type="call", spot=100, strike=100,
                                   maturity=1, vol=0.2, rate=0.03, n_paths=2048, seed=1,
                                   greeks=["delta"])
    frame = result.to_frame()
    names = [n for n in list(frame.columns) + list(frame.index.names) if n is not None]
    assert _undocumented(names) == []


def _cli(*args):
    """Run the installed command (the console script if on PATH, else the module), as a user
    would, and return its standard output."""
    exe = shutil.which("mcgreeks")
    command = [exe] if exe else [sys.executable, "-m", "mcgreeks"]
    done = subprocess.run(command + list(args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _flags(help_text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)) - {"--help"})


def _subcommands(help_text):
    match = re.search(r"\{([a-z,-]+)\}", help_text)
    assert match, help_text
    return match.group(1).split(",")


def test_every_command_and_flag_is_documented():
    docs = _doc_text()
    top = _cli("--help")
    commands = _subcommands(top)
    assert "price" in commands
    missing = [f"mcgreeks {c}" for c in commands if f"mcgreeks {c}" not in docs]
    for flag in _flags(top):
        if not re.search(re.escape(flag) + r"(?![a-z0-9-])", docs):
            missing.append(flag)
    for command in commands:
        for flag in _flags(_cli(command, "--help")):
            if not re.search(re.escape(flag) + r"(?![a-z0-9-])", docs):
                missing.append(f"{command} {flag}")
    assert missing == []


def test_every_documented_command_and_flag_exists():
    """The other direction: docs/ describe no subcommand or flag the command line lacks."""
    docs = _doc_text()
    top = _cli("--help")
    commands = _subcommands(top)
    known = set(_flags(top)) | {"--help"}
    for command in commands:
        known |= set(_flags(_cli(command, "--help")))
    documented_commands = set(re.findall(r"^#{2,} mcgreeks ([a-z-]+)$", docs, flags=re.M))
    documented_flags = {span.split()[0].split("=")[0] for span in _code_spans(docs)
                        if span.startswith("--")}
    assert sorted(documented_commands - set(commands)) == []
    assert sorted(documented_flags - known) == []


def _slug(heading):
    """GitHub's anchor of a markdown heading."""
    # lower case, punctuation (backticks included) dropped, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path):
    seen, out = {}, set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = _slug(match.group(1))
            n = seen.get(slug, 0)
            out.add(slug if n == 0 else f"{slug}-{n}")
            seen[slug] = n + 1
    return out


def _markdown_files():
    return [ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))


def test_markdown_links_resolve_inside_the_repository():
    """Every relative link of the README and docs/ names a file of the repository, and every
    #anchor a heading of that file."""
    broken = []
    for md in _markdown_files():
        text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue                            # a web address
            path, _, anchor = target.partition("#")
            file = (md.parent / path).resolve() if path else md
            if not file.exists() or ROOT not in file.parents:
                broken.append(f"{md.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{md.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def _project_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            try:
                yield path, path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue                            # binary: images, caches


def test_references_to_docs_resolve():
    """A pointer such as docs/reference.md#trades in code, --help or a docstring names a
    heading that exists."""
    anchors = {p.relative_to(ROOT).as_posix(): _anchors(p) for p in DOCS.rglob("*.md")}
    broken = []
    for path, text in _project_files():
        for doc, anchor in re.findall(r"(docs/[\w/.-]+\.md)(?:#([\w-]+))?", text):
            if doc not in anchors or (anchor and anchor not in anchors[doc]):
                broken.append(f"{path.relative_to(ROOT)}: {doc}#{anchor}")
    assert broken == []


def test_no_reference_to_files_users_do_not_have():
    """Nothing in the repository points at the developers' private contract file; the docs/
    folder is the contract users get."""
    private = re.compile(r"\bSPEC\b|shared/")
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for path, text in _project_files() if path != Path(__file__).resolve()
                 for n, line in enumerate(text.splitlines(), start=1) if private.search(line)]
    assert offenders == []
