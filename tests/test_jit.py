"""The kernel cache (mcgreeks._jit): keyed by the package version and a hash of every kernel
source, so a kernel compiled from older source is never served; where it lives; the borrowed
arrays of the block kernels."""
import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import mcgreeks
from mcgreeks import _jit

PACKAGE = Path(mcgreeks.__file__).resolve().parent

# Prices one European call unit on one path through the GBM pricer's fd revaluation kernel
# _moved_values (rate 0, log drift r - q - σ²/2 = 0), which calls payoffs.value (another file):
# the cached _moved_values holds payoffs.value's machine code.
SCRIPT = """
import numpy as np
from mcgreeks import _jit
from mcgreeks.pricers import gbm
ti = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int64)  # european, dates 0..0, asset 0
tf = np.array([1.0, 100.0, 0.0, 1.0, 1.0])              # call, strike 100, maturity 1
out = np.empty(1)
gbm._moved_values(0, ti, tf, np.zeros(1, dtype=np.int64), np.zeros((1, 1)), np.ones(1),
                  np.full((1, 1), 0.3), 1, 100.0, 0.0, -0.02, 0.2, 1.0, np.zeros((6, 1)), out)
print(repr(float(out[0])), _jit.cache_dir(), sum(gbm._moved_values.stats.cache_hits.values()))
"""


def _run(package_parent, env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=package_parent,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    value, where, hits = out.stdout.split()
    return float(value), Path(where), int(hits)


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the package (sources only) importable from tmp_path/src, and an environment
    that imports it and caches kernels under tmp_path/cache."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "mcgreeks", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(src), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    return src, env


def _edit_payoff(src, factor):
    """Scale the vanilla payoff in the copy's payoffs.py (a file the cached kernel inlines)."""
    path = src / "mcgreeks" / "payoffs.py"
    text = path.read_text()
    old = "    return moneyness if moneyness > 0.0 else 0.0\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, f"    return {factor} * moneyness if moneyness > 0.0 "
                                      "else 0.0\n"))


def test_a_kernel_inlining_an_edited_file_is_recompiled(package_copy):
    src, env = package_copy
    first, where, hits = _run(src, env)
    assert first == pytest.approx(100.0 * np.exp(0.2 * 0.3) - 100.0, rel=1e-14)
    assert hits == 0 and any(where.rglob("gbm._moved_values-*.nbi"))
    again, same_place, hits = _run(src, env)
    assert (again, same_place, hits) == (first, where, 1)      # the cache works
    _edit_payoff(src, 2.0)
    edited, new_place, hits = _run(src, env)
    assert edited == 2.0 * first and hits == 0
    assert new_place != where and new_place.name.startswith(mcgreeks.__version__ + "-")


def test_without_the_key_numba_would_serve_the_stale_kernel(package_copy):
    """The same edit with numba's own locator (keyed by _moved_values' file alone): the old machine
    code comes back.  This is the failure the package key prevents."""
    src, env = package_copy
    env["NUMBA_CACHE_LOCATOR_CLASSES"] = "UserProvidedCacheLocator"
    first = _run(src, env)[0]
    _edit_payoff(src, 2.0)
    stale, _, hits = _run(src, env)
    assert stale == first and hits == 1


def test_cache_lives_in_the_user_cache_folder_not_in_the_package(package_copy, tmp_path):
    """Without NUMBA_CACHE_DIR the kernels go to the user cache folder (XDG_CACHE_HOME), so a
    read-only installed package is never written to."""
    src, env = package_copy
    del env["NUMBA_CACHE_DIR"]
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    _, where, _ = _run(src, env)
    assert where.parent == tmp_path / "xdg" / "mcgreeks"
    assert not list((src / "mcgreeks").rglob("*.nbi"))


def test_kernel_folders_unused_for_a_month_are_pruned_and_nothing_else(tmp_path):
    """Choosing a folder marks it used; a sibling kernel folder (any version, or an editable
    install's kernels-<key>) last used more than STALE_DAYS ago goes, by its mark or, without
    one, its own time; a recently used one, the folder itself and anything not named like a
    kernel folder stay."""
    day = 86400.0
    now = 1_000 * day
    parent = tmp_path / "mcgreeks"
    mine = parent / "0.5.0-0123456789abcdef"
    names = {"old_marked": "0.4.0-aaaaaaaaaaaaaaaa", "old_unmarked": "0.3.0-bbbbbbbbbbbbbbbb",
             "editable": "kernels-0.4.0-cccccccccccccccc", "recent": "0.4.1-dddddddddddddddd",
             "not_ours": "photos", "not_hex": "0.4.0-not-a-hash-at-all"}
    ages = {"old_marked": 31, "old_unmarked": 45, "editable": 60, "recent": 29, "not_ours": 400,
            "not_hex": 400}
    for label, name in names.items():
        folder = parent / name
        (folder / "top").mkdir(parents=True)
        stamp = now - ages[label] * day
        if label == "old_marked" or label == "recent":
            (folder / "last-used").touch()
            os.utime(folder / "last-used", (stamp, stamp))
            os.utime(folder, (now, now))             # written to lately, but not used
        else:
            os.utime(folder, (stamp, stamp))
    mine.mkdir(parents=True)
    removed = _jit.prune_stale(mine, now=now)
    assert removed == sorted([names["old_marked"], names["old_unmarked"], names["editable"]])
    assert sorted(p.name for p in parent.iterdir()) == sorted(
        [mine.name, names["recent"], names["not_ours"], names["not_hex"]])
    assert (mine / "last-used").exists()
    assert _jit.prune_stale(mine, now=now) == []


def test_cache_key_changes_with_a_kernel_source_only(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "mcgreeks", ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / "mcgreeks"
    key = _jit.cache_key(copy)
    assert key == _jit.cache_key(PACKAGE) and key.startswith(mcgreeks.__version__ + "-")
    (copy / "cli.py").write_text((copy / "cli.py").read_text() + "\n# a comment\n")
    assert _jit.cache_key.__wrapped__(copy) == key              # the front end is not hashed
    (copy / "vecmath.py").write_text((copy / "vecmath.py").read_text() + "\n# a comment\n")
    assert _jit.cache_key.__wrapped__(copy) != key


def _imported_modules(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _module_name(rel):
    return "mcgreeks." + rel[:-3].replace("/", ".").removesuffix(".__init__")


def test_front_end_modules_hold_no_kernel_and_no_kernel_module_imports_them():
    """The split of FRONT_END: a kernel can read only names of kernel sources."""
    kernel_rel = _jit.kernel_sources()
    front = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if p.relative_to(PACKAGE).as_posix() not in kernel_rel]
    assert "cli.py" in front and "pricers/gbm.py" in kernel_rel
    front_names = {_module_name(rel) for rel in front} - {"mcgreeks"}
    for rel in front:
        module = importlib.import_module(_module_name(rel))
        dispatchers = [n for n, v in vars(module).items()
                       if isinstance(v, numba.core.dispatcher.Dispatcher)
                       and v.py_func.__module__ == module.__name__]
        assert not dispatchers, f"{rel} defines kernels {dispatchers}: not a front-end module"
    for rel in kernel_rel:
        assert not _imported_modules(PACKAGE / rel) & front_names, rel


def test_borrowed_arrays_read_and_write_the_same_memory():
    @numba.njit
    def double_through_borrow(a):
        b = _jit.borrow(a)
        for i in range(b.size):
            b[i] *= 2.0
        return b.sum()

    @numba.njit
    def scratch_kept_alive(n):
        owned = np.zeros(n)
        view = _jit.borrow(owned)
        for i in range(n):
            view[i] = i
        total = view.sum()
        _jit.keep(owned)
        return total

    a = np.arange(4.0)
    assert double_through_borrow(a) == 12.0 and list(a) == [0.0, 2.0, 4.0, 6.0]
    assert scratch_kept_alive(1000) == 999 * 1000 / 2
