"""The one place that decides how numba compiles mcgreeks kernels, and where it caches them.

Every kernel is compiled with numba's on-disk cache, so a nightly job pays JIT time once per
machine and version, not once per run.  ``error_model="numpy"`` drops Python's division checks
(a zero divisor gives inf/nan as in NumPy), which lets LLVM vectorize the inner loops.
``fastmath`` stays off: reassociating sums would make results depend on the compiler's choices,
and the engine promises the same bits for the same seed.

The cache.  Numba keys a cached kernel by its own source file only, but a kernel's machine code
also holds every kernel it calls or inlines from other files (a pricer's block holds the
payoffs, the generator, the engine's sums) and the module constants they read.  So an upgrade
that changed only ``payoffs.py`` would be served the old pricer.  mcgreeks kernels are cached
instead under ``cache_dir()``, a folder named by the package version and a hash of every
kernel source file (``KERNEL_SOURCES``), and that key is also each entry's freshness stamp: any
change to any of them makes every entry stale.  Each process marks its folder used; a sibling
folder of another version or source that no process has used for ``STALE_DAYS`` is removed
(``prune_stale``): a folder is about 30 MB, and every upgrade or kernel edit adds one.
"""
import functools
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numba
from numba import types
from numba.core import caching, cgutils
from numba.extending import intrinsic

_OPTIONS = dict(cache=True, error_model="numpy", fastmath=False, nogil=True)

PACKAGE_DIR = Path(__file__).resolve().parent
#: Package modules that hold no kernel and whose names no kernel reads (the Python front end):
#: left out of the cache key, so that editing them does not recompile the kernels.  Every other
#: ``.py`` file of the package is a kernel source (tests/test_jit.py checks the split).
FRONT_END = ("__init__.py", "__main__.py", "arguments.py", "cli.py", "correlation.py",
             "distributed.py", "formatting.py", "option.py", "portfolio.py", "risk.py",
             "underlying.py", "validation.py", "warmup.py", "analytic/",
             "estimators/selection.py")


def kernel_sources(package_dir=PACKAGE_DIR):
    """The package's kernel source files (paths relative to ``package_dir``), sorted."""
    out = []
    for path in sorted(Path(package_dir).rglob("*.py")):
        rel = path.relative_to(package_dir).as_posix()
        if not any(rel == f or (f.endswith("/") and rel.startswith(f)) for f in FRONT_END):
            out.append(rel)
    return out


def _version(package_dir):
    text = (Path(package_dir) / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
    return found.group(1) if found else "unknown"


@functools.lru_cache(maxsize=None)
def cache_key(package_dir=PACKAGE_DIR):
    """'<version>-<first 16 hex digits of the sha256 of the kernel sources>' (read once per
    process)."""
    digest = hashlib.sha256()
    for rel in kernel_sources(package_dir):
        digest.update(rel.encode() + b"\0" + (Path(package_dir) / rel).read_bytes() + b"\0")
    return f"{_version(package_dir)}-{digest.hexdigest()[:16]}"


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def _candidates(key):
    """Where the cache may live, in order of preference."""
    from numba.misc.appdirs import AppDirs
    if numba.config.CACHE_DIR:
        yield Path(numba.config.CACHE_DIR) / "mcgreeks" / key
    yield Path(AppDirs(appname="mcgreeks", appauthor=False).user_cache_dir) / key
    # a read-only home: beside the package (an editable install), then the temporary folder
    yield PACKAGE_DIR / "__pycache__" / f"kernels-{key}"
    user = re.sub(r"\W", "_", os.environ.get("USER", "") or str(os.getuid()
                                                               if hasattr(os, "getuid") else ""))
    yield Path(tempfile.gettempdir()) / f"mcgreeks-{user}" / key


#: Days after which a kernel folder no process has used is removed (``prune_stale``).
STALE_DAYS = 30
#: The name of a kernel folder: [kernels-]<version>-<16 hex digits> (``_candidates``).
_FOLDER = re.compile(r"^(kernels-)?[\w.+!-]+-[0-9a-f]{16}$")
#: The file whose modification time is a folder's last use.
_USED = "last-used"

_chosen = {}


def cache_dir():
    """The folder of this package version's compiled kernels: NUMBA_CACHE_DIR/mcgreeks/<key>
    when NUMBA_CACHE_DIR is set, else the user cache folder (~/.cache/mcgreeks/<key> on Linux),
    else, when that is not writable, the package's __pycache__ or the temporary folder.  The
    first writable one; None if none is.  Choosing it marks it used and prunes its stale
    siblings, once per process."""
    key = (cache_key(), numba.config.CACHE_DIR)
    if key not in _chosen:
        _chosen[key] = next((p for p in _candidates(key[0]) if _writable(p)), None)
        if _chosen[key] is not None:
            prune_stale(_chosen[key])
    return _chosen[key]


def prune_stale(folder, now=None, days=STALE_DAYS):
    """Mark the kernel folder ``folder`` used (now), and remove each sibling kernel folder
    (named as ``_FOLDER``; nothing else in the parent is touched) last used more than ``days``
    days before ``now`` (seconds since the epoch; default the clock), by its ``last-used``
    mark, or by its own modification time when it has none (a folder from before the marks).
    A folder another process is using is marked at that process's start, so it stays; one
    removed under a process that was started ``days`` ago is compiled into again.  Returns the
    removed folders' names.  Errors (a read-only parent, a race with another pruner) are
    ignored: the cache is an optimization."""
    now = time.time() if now is None else now
    folder = Path(folder)
    removed = []
    try:
        (folder / _USED).touch()
        siblings = list(folder.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        if sibling == folder or not _FOLDER.match(sibling.name) or not sibling.is_dir():
            continue
        try:
            mark = sibling / _USED
            used = (mark if mark.exists() else sibling).stat().st_mtime
        except OSError:
            continue
        if now - used > days * 86400.0:
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling.name)
    return sorted(removed)


class _KernelCacheLocator(caching._CacheLocator):
    """Numba cache locator for the package's kernels: entries under ``cache_dir()`` (one
    sub-folder per package sub-folder), stamped with ``cache_key()``."""

    def __init__(self, py_func, py_file, root):
        self._lineno = py_func.__code__.co_firstlineno
        rel = Path(py_file).resolve().parent.relative_to(PACKAGE_DIR).as_posix()
        self._path = str(root / ("top" if rel == "." else rel.replace("/", "_")))
        self._stamp = root.name

    def ensure_cache_path(self):
        os.makedirs(self._path, exist_ok=True)

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            Path(py_file).resolve().relative_to(PACKAGE_DIR)
        except ValueError:
            return None                 # not an mcgreeks kernel: numba's own locators
        root = cache_dir()
        if root is None:
            return None
        self = cls(py_func, py_file, root)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


if _KernelCacheLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, _KernelCacheLocator)


def kernel(func=None, *, inline=False):
    """Decorate ``func`` as an mcgreeks numba kernel.

    ``inline=True`` inlines it into its callers in numba's own IR.  For the per-tile and per-path
    pieces of a pricer: a call that LLVM does not inline passes every array argument as about
    ten scalars, which cost more than a one-date payoff's whole tile of work.  The price is
    compile time (cached on disk).  Kernels are not ``parallel``: ``engine.for_blocks`` runs a
    pricer's blocks of tiles on threads (the kernels release the GIL)."""

    def wrap(f):
        return numba.njit(inline="always" if inline else "never", **_OPTIONS)(f)

    return wrap(func) if func is not None else wrap


@intrinsic
def borrow(typingctx, a):
    """``a`` itself, without its memory manager: every view and call made from the result
    costs no reference counting.

    Numba counts references to an array at each slice, view or call that takes it, with an
    atomic add on the array's counter; in a block kernel that is several atomic writes per path
    (more than half the time of a price-only European book, measured) and, from two threads, on
    the same cache lines.  A borrowed array has no counter, so those become a test of a null
    pointer.  Valid only while ``a`` is alive: borrow a kernel's arguments (its caller holds
    them), or a local array that ``keep`` keeps alive to the end; never return or store it."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, value=args[0])
        array.meminfo = cgutils.get_null_value(array.meminfo.type)
        array.parent = cgutils.get_null_value(array.parent.type)
        return array._getvalue()

    return a(a), codegen


@intrinsic
def keep(typingctx, a):
    """Nothing, but numba keeps ``a`` alive up to this call (for arrays ``borrow``ed from it)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(a), codegen


#: model -> the child process compiling its kernels into the cache (``warmup.start_background``).
BACKGROUND = {}


def wait_for_background(model):
    """If a child process is compiling ``model``'s kernels, wait for it to end (the kernels are
    then loaded from the cache instead of compiled again here).  True if it succeeded."""
    child = BACKGROUND.pop(model, None)
    if child is None:
        return False
    return child.wait() == 0
