"""The one place that decides how numba compiles mcgreeks kernels.

Every kernel is compiled with numba's on-disk cache, so a nightly job pays JIT time once per
machine and version, not once per run.  ``error_model="numpy"`` drops Python's division checks
(a zero divisor gives inf/nan as in NumPy), which lets LLVM vectorize the inner loops.
``fastmath`` stays off: reassociating sums would make results depend on the compiler's choices,
and the engine promises the same bits for the same seed.
"""
import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_OPTIONS = dict(cache=True, error_model="numpy", fastmath=False, nogil=True)


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
