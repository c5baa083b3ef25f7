"""Small dense linear algebra with the same bits on every machine.

What the pilots' regressions need (the optimal blend's least squares on a pilot covariance, an
exercise policy's Longstaff-Schwartz fit) on matrices of a few rows, written as numba kernels of
IEEE-754 +, -, *, / and sqrt in a fixed order.  NumPy's ``@``, ``einsum`` with BLAS and
``linalg`` call OpenBLAS / LAPACK, whose kernels are chosen by the CPU at run time and sum in
different orders (measured: ``x.T @ x`` of a 262,144 x 5 matrix has three different bit patterns
under OpenBLAS's Haswell, SkylakeX and Sandybridge kernels), so a coefficient fitted on one
machine would differ in its last bits from the same fit on another, and so would every result
it scales.

- ``normal_equations``: X^T X and X^T y from X's columns, each entry summed over the rows in
  eight fixed lanes (so that it vectorizes), added in a fixed tree.
- ``symmetric_eigen``: eigenvalues and eigenvectors of a symmetric matrix by the cyclic Jacobi
  method (Golub & Van Loan, "Matrix Computations", 4th ed., 2013, §8.5.2-8.5.3; the rotation
  of Rutishauser, Numer. Math. 9 (1966) 1-10), to full accuracy and in a fixed order of
  rotations.
- ``pinv_solve``: the minimum-norm least-squares solution pinv(A) b of a symmetric A, dropping
  the eigen-directions with |eigenvalue| <= rcond * the largest (as ``np.linalg.pinv(A, rcond,
  hermitian=True) @ b``, and ``np.linalg.lstsq`` for a symmetric A).
- ``r_squared``: a fit's coefficient of determination, its sums in the same fixed lanes.
"""
import math

import numpy as np

from mcgreeks._jit import kernel

#: Jacobi sweeps at most; the method converges quadratically, in 6-10 sweeps for n <= 10.
MAX_SWEEPS = 60


#: Lanes of the sums over rows: row i goes to lane i % LANES, the lanes are added in a fixed
#: tree at the end.  A fixed order that LLVM can vectorize, where one running sum could not be.
LANES = 8


@kernel(inline=True)
def _lane_dot(u, v, lanes):
    """Σ_i u[i] v[i] over rows i in ``LANES`` lanes (row i in lane i % LANES, in row order within
    a lane) then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))."""
    n = u.size
    for k in range(LANES):
        lanes[k] = 0.0
    whole = n - n % LANES
    for i in range(0, whole, LANES):
        for k in range(LANES):
            lanes[k] += u[i + k] * v[i + k]
    for i in range(whole, n):
        lanes[i - whole] += u[i] * v[i]
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + \
        ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


@kernel
def normal_equations(xt, y, xtx, xty):
    """xtx = X^T X and xty = X^T y for X = xt^T (xt: c columns of n rows each, C-contiguous)
    and y (n): each entry ``_lane_dot``'s fixed-order sum over the rows (xtx symmetric)."""
    c = xt.shape[0]
    lanes = np.empty(LANES)
    for a in range(c):
        xty[a] = _lane_dot(xt[a], y, lanes)
        for b in range(a, c):
            xtx[a, b] = _lane_dot(xt[a], xt[b], lanes)
            xtx[b, a] = xtx[a, b]


@kernel
def symmetric_eigen(a, w, v):
    """Eigenvalues w and eigenvectors (the columns of v) of the symmetric matrix a, which is
    overwritten.  Cyclic Jacobi: sweeps of plane rotations over p < q in row order, each
    zeroing a[p, q], until a sweep finds every off-diagonal entry negligible against its
    diagonal neighbours (|a_pq| <= 1e-18 sqrt|a_pp a_qq|, or exactly 0)."""
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            v[i, j] = 1.0 if i == j else 0.0
    for _ in range(MAX_SWEEPS):
        rotated = False
        for p in range(n):
            for q in range(p + 1, n):
                apq = a[p, q]
                if apq == 0.0 or math.fabs(apq) <= 1e-18 * math.sqrt(math.fabs(a[p, p] * a[q, q])):
                    a[p, q] = a[q, p] = 0.0
                    continue
                rotated = True
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                # the smaller root of t^2 + 2 theta t - 1 = 0, without overflow for large theta
                if math.fabs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (math.fabs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):
                    akp, akq = a[k, p], a[k, q]
                    a[k, p] = c * akp - s * akq
                    a[k, q] = s * akp + c * akq
                for k in range(n):
                    apk, aqk = a[p, k], a[q, k]
                    a[p, k] = c * apk - s * aqk
                    a[q, k] = s * apk + c * aqk
                a[p, q] = a[q, p] = 0.0
                for k in range(n):
                    vkp, vkq = v[k, p], v[k, q]
                    v[k, p] = c * vkp - s * vkq
                    v[k, q] = s * vkp + c * vkq
        if not rotated:
            break
    for i in range(n):
        w[i] = a[i, i]


@kernel
def pinv_solve(a, b, rcond, out):
    """out = pinv(a) b for a symmetric a (c x c, not modified): the sum over a's eigenpairs
    (w_i, v_i) with |w_i| > rcond max|w| of v_i (v_i . b) / w_i, in order of i."""
    c = a.shape[0]
    work = a.copy()
    w = np.empty(c)
    v = np.empty((c, c))
    symmetric_eigen(work, w, v)
    largest = 0.0
    for i in range(c):
        largest = max(largest, math.fabs(w[i]))
    for k in range(c):
        out[k] = 0.0
    for i in range(c):
        if not math.fabs(w[i]) > rcond * largest:
            continue
        proj = 0.0
        for k in range(c):
            proj += v[k, i] * b[k]
        proj /= w[i]
        for k in range(c):
            out[k] += v[k, i] * proj


@kernel
def columns_times(xt, beta, out):
    """out = xt^T beta for the columns xt (c x n) and beta (c): out[i] = Σ_a xt[a, i] beta[a],
    the columns added in order (a loop over rows that vectorizes)."""
    c, n = xt.shape
    for i in range(n):
        out[i] = 0.0
    for a in range(c):
        ba = beta[a]
        for i in range(n):
            out[i] += xt[a, i] * ba


@kernel
def r_squared(y, fitted):
    """The coefficient of determination 1 - Σ(y - f)² / Σ(y - ȳ)² of fitted values f for y
    (Σ(y - ȳ)² floored at 1e-300), each sum over the rows in ``_lane_dot``'s lanes, ȳ as Σ y·1
    over n."""
    n = y.size
    lanes = np.empty(LANES)
    d = np.empty(n)
    for i in range(n):
        d[i] = 1.0
    mean = _lane_dot(y, d, lanes) / max(n, 1)
    for i in range(n):
        d[i] = y[i] - fitted[i]
    residual = _lane_dot(d, d, lanes)
    for i in range(n):
        d[i] = y[i] - mean
    return 1.0 - residual / max(_lane_dot(d, d, lanes), 1e-300)
