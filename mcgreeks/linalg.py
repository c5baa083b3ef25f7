"""Small dense linear algebra with the same bits on every machine.

What the pilots' regressions need (the optimal blend's least squares on a pilot covariance, an
exercise policy's Longstaff-Schwartz fit) on matrices of a few rows, written as numba kernels of
IEEE-754 +, -, *, / and sqrt in a fixed order.  NumPy's ``@``, ``einsum`` with BLAS and
``linalg`` call OpenBLAS / LAPACK, whose kernels are chosen by the CPU at run time and sum in
different orders (measured: ``x.T @ x`` of a 262,144 x 5 matrix has three different bit patterns
under OpenBLAS's Haswell, SkylakeX and Sandybridge kernels), so a coefficient fitted on one
machine would differ in its last bits from the same fit on another, and so would every result
it scales.

- ``normal_equations``: X^T X and X^T y, each entry summed over the rows in order.
- ``symmetric_eigen``: eigenvalues and eigenvectors of a symmetric matrix by the cyclic Jacobi
  method (Golub & Van Loan, "Matrix Computations", 4th ed., 2013, §8.5.2-8.5.3; the rotation
  of Rutishauser, Numer. Math. 9 (1966) 1-10), to full accuracy and in a fixed order of
  rotations.
- ``pinv_solve``: the minimum-norm least-squares solution pinv(A) b of a symmetric A, dropping
  the eigen-directions with |eigenvalue| <= rcond * the largest (as ``np.linalg.pinv(A, rcond,
  hermitian=True) @ b``, and ``np.linalg.lstsq`` for a symmetric A).
"""
import math

import numpy as np

from mcgreeks._jit import kernel

#: Jacobi sweeps at most; the method converges quadratically, in 6-10 sweeps for n <= 10.
MAX_SWEEPS = 60


@kernel
def normal_equations(x, y, xtx, xty):
    """xtx = X^T X and xty = X^T y for X = x (n rows, c columns) and y (n), each entry a sum
    over the rows in row order (xtx symmetric: its lower triangle is a copy of the upper)."""
    n, c = x.shape
    for a in range(c):
        xty[a] = 0.0
        for b in range(c):
            xtx[a, b] = 0.0
    for i in range(n):
        for a in range(c):
            xa = x[i, a]
            xty[a] += xa * y[i]
            for b in range(a, c):
                xtx[a, b] += xa * x[i, b]
    for a in range(c):
        for b in range(a):
            xtx[a, b] = xtx[b, a]


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
def matvec(x, beta, out):
    """out = x beta for x (n x c) and beta (c), each row's sum over the columns in order."""
    n, c = x.shape
    for i in range(n):
        s = 0.0
        for a in range(c):
            s += x[i, a] * beta[a]
        out[i] = s
