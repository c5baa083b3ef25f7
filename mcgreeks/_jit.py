"""The one place that decides how numba compiles mcgreeks kernels.

Every kernel is compiled with numba's on-disk cache, so a nightly job pays JIT time once per
machine and version, not once per run.  ``error_model="numpy"`` drops Python's division checks
(a zero divisor gives inf/nan as in NumPy), which lets LLVM vectorize the inner loops.
``fastmath`` stays off: reassociating sums would make results depend on the compiler's choices,
and the engine promises the same bits for the same seed.
"""
import numba

_OPTIONS = dict(cache=True, error_model="numpy", fastmath=False, nogil=True)


def kernel(func=None, *, parallel=False, inline=False):
    """Decorate ``func`` as an mcgreeks numba kernel (``parallel=True`` enables ``prange``).

    ``inline=True`` inlines it into its callers in numba's own IR.  For the per-tile and per-path
    pieces of a pricer: a call that LLVM does not inline passes every array argument as about
    ten scalars and counts references to it, which cost more than a one-date payoff's whole
    tile of work, and reference counts on shared arrays (the grid, the trade table) are atomic
    writes to one cache line from every thread.  The price is compile time (cached on disk)."""

    def wrap(f):
        return numba.njit(parallel=parallel, inline="always" if inline else "never",
                          **_OPTIONS)(f)

    return wrap(func) if func is not None else wrap
