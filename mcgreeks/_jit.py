"""The one place that decides how numba compiles mcgreeks kernels.

Every kernel is compiled with numba's on-disk cache, so a nightly job pays JIT time once per
machine and version, not once per run.  ``error_model="numpy"`` drops Python's division checks
(a zero divisor gives inf/nan as in NumPy), which lets LLVM vectorize the inner loops.
``fastmath`` stays off: reassociating sums would make results depend on the compiler's choices,
and the engine promises the same bits for the same seed.
"""
import numba

_OPTIONS = dict(cache=True, error_model="numpy", fastmath=False, nogil=True)


def kernel(func=None, *, parallel=False):
    """Decorate ``func`` as an mcgreeks numba kernel (``parallel=True`` enables ``prange``)."""

    def wrap(f):
        return numba.njit(parallel=parallel, **_OPTIONS)(f)

    return wrap(func) if func is not None else wrap
