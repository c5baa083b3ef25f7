"""The input side of correlated simulation: the correlations table, simulation groups, their
Cholesky factors and the factors' derivatives, and the cells of a multi-asset trade.

Nothing here prices.  The rules are those of docs/reference.md#input-errors, reported the way
``mcgreeks.validation`` reports them: one line per problem naming the row, the column and the
value, every problem of a table listed (up to ``validation.REPORT_LIMIT``) in one ``InputError``.

The pieces, in the order a pricing run uses them::

    pairs = check_correlations(table, market)        # [(name_a, name_b, corr), ...]
    for members, factor in simulation_groups(list(market), pairs):
        ...                                          # draws of `members` correlated by `factor`

and, per trade whose payoff reads several underlyings, ``multi_asset_cells(row, payoff, market)``
(or its stand-alone twin ``check_multi_asset_trade``).

References
----------
1. N. J. Higham, "Analysis of the Cholesky decomposition of a semi-definite matrix", in
   Reliable Numerical Computation, Oxford University Press, 1990, pp. 161-185.
2. I. Murray, "Differentiation of the Cholesky decomposition", arXiv:1602.07527, 2016.
3. P. Glasserman, Monte Carlo Methods in Financial Engineering, Springer, 2003, section 2.3.3
   (correlated normals from a Cholesky factor).
"""
import math

import numpy as np

from mcgreeks import greeks as G
from mcgreeks import kernel_inputs
from mcgreeks.pricers import gbm_multi, heston_multi

from mcgreeks.validation import (InputError, _missing, _number, _require, _Row, _text,
                                 raise_problems)

CORRELATION_COLUMNS = ("underlying_1", "underlying_2", "corr")

#: Payoffs whose ``underlying`` cell lists several names (separated by ``;``) with ``weights``.
MULTI_ASSET_PAYOFFS = ("basket", "best_of", "worst_of", "spread")

#: A group's matrix is accepted when its smallest eigenvalue is at least ``-PSD_TOLERANCE``:
#: a matrix typed with a few decimals, or with corr = 1 chains, is PSD only up to rounding.
PSD_TOLERANCE = 1e-12

#: The factor L must reproduce its matrix to this (entrywise): far above Cholesky's rounding
#: (about n * 2**-53, reference 1), far below any correlation a user would type.
RESIDUAL_TOLERANCE = 1e-10


# --- the correlations table ---------------------------------------------------------------------

def correlation_problems(table, market, bad_market=None):
    """Check the correlations table against the checked market.

    ``market`` is the {underlying: parameters} of ``validation.check_market`` (clean names) and
    ``bad_market`` its {underlying: problem} of invalid rows.  Returns (pairs, problems): the
    (name_a, name_b, corr) of the good rows in row order (names stripped, corr a float), and
    one line per problem in row order.  ``table`` None means no correlations.  Raises
    InputError for a missing column.
    """
    if table is None:
        return [], []
    _require(table, CORRELATION_COLUMNS, "correlations")
    bad_market = bad_market or {}
    pairs, problems, seen = [], [], {}
    for number, record in enumerate(table.to_dict("records"), start=1):
        row = _Row(f"correlations row {number}", record)
        names = [_name(row, column, market, bad_market) for column in CORRELATION_COLUMNS[:2]]
        corr = row.number("corr", low=-1.0, low_open=False, high=1.0)
        a, b = names
        if a is not None and a == b:
            row.fail("underlying_2", "must differ from underlying_1 (a name's correlation "
                                     "with itself is 1)")
        elif a is not None and b is not None:
            # The matrix is symmetric, so (a, b) and (b, a) are one entry: which row would win?
            key = frozenset((a, b))
            if key in seen:
                row.fail("underlying_2", f"the pair {a}, {b} is already listed in "
                                         f"correlations row {seen[key]}")
            else:
                seen[key] = number
        problems += row.problems
        if not row.problems:
            pairs.append((a, b, corr))
    return pairs, problems


def _name(row, column, market, bad_market):
    name = _text(row.record.get(column))
    if name is None:
        row.fail(column, "must be a non-empty name")
    elif name in bad_market:
        row.fail(column, f"its market row is invalid ({bad_market[name]})")
    elif name not in market:
        row.fail(column, "no such underlying in the market table")
    else:
        return name
    return None


def check_correlations(table, market, bad_market=None):
    """The clean list of (name_a, name_b, corr) of the correlations table, or InputError.

    Every bad row is reported, one line each (``correlations row N: column 'corr' has value
    1.5: must be <= 1``).  A bad correlation row is never skipped, whatever ``on_error`` says:
    pricing without it would silently simulate the pair as independent.  See
    ``correlation_problems`` for the arguments.
    """
    pairs, problems = correlation_problems(table, market, bad_market)
    raise_problems(problems, "correlations")
    return pairs


# --- simulation groups --------------------------------------------------------------------------

def groups(names, pairs, together=()):
    """The simulation groups: the connected components of the graph whose vertices are
    ``names`` (every underlying of the market) and whose edges are the pairs of ``pairs``
    ((name_a, name_b, corr), as ``check_correlations`` returns them) with corr != 0, and the
    names of each tuple of ``together`` (a multi-asset trade's underlyings, which must be
    simulated on common paths even where uncorrelated).

    Returns a list of tuples of names.  Members are in code-point order of their names (Python
    string order), groups in the order of their first members; an underlying with no nonzero
    correlation is a group of one.

    Why this order, and why not the market table's: a group's correlated draws are
    ``L @ z`` with z_k drawn from the stream of member k and L the lower Cholesky factor of the
    group's matrix *in member order*.  The order therefore decides which streams each member's
    draws mix (member 0 reads its own stream alone, bit for bit; member k mixes members 0..k)
    and the factor itself (the Cholesky factor of a permuted matrix is not the permuted
    factor), so it fixes every bit of a group's paths.  Ordering by name keeps the draws a pure
    function of (seed, the group's names and correlations, path, draw), as
    docs/reference.md#reproducibility promises for single underlyings: sorting or filtering
    the market or correlations tables changes nothing.
    """
    names = list(names)
    parent = {name: name for name in names}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving: the trees stay shallow
            x = parent[x]
        return x

    for a, b, corr in pairs:
        for n in (a, b):
            if n not in parent:
                raise ValueError(f"correlation pair ({a!r}, {b!r}) names {n!r}, which is not "
                                 "among the names given")
        if corr != 0.0:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    for linked in together:
        for a, b in zip(linked, linked[1:]):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members = {}
    for name in sorted(set(names)):
        members.setdefault(root(name), []).append(name)
    return sorted((tuple(m) for m in members.values()), key=lambda g: g[0])


def group_matrix(group, pairs):
    """The correlation matrix of ``group`` (a tuple of names, in the order of its rows): 1 on
    the diagonal, corr of a listed pair at (i, j) and (j, i), 0 for a pair not listed.  Pairs
    naming anything outside the group are ignored.  Returns a float64 array (n, n), exactly
    symmetric."""
    index = {name: i for i, name in enumerate(group)}
    matrix = np.eye(len(group))
    for a, b, corr in pairs:
        if a in index and b in index:
            matrix[index[a], index[b]] = matrix[index[b], index[a]] = corr
    return matrix


def _label(group):
    return "the group " + ", ".join(group) if group else "the matrix"


def _not_psd(group, matrix, why):
    smallest = float(np.linalg.eigvalsh(matrix)[0])
    return InputError(f"correlations: {_label(group)} is not positive semidefinite: its "
                      f"correlation matrix has smallest eigenvalue {smallest:.6g}{why} (no "
                      "repair is attempted: fix the correlations of these underlyings)")


def cholesky(matrix, group=None):
    """The lower-triangular L with L L^T = ``matrix`` for a positive semidefinite matrix, with
    L[k, k] >= 0; ``group`` (its members' names) is for the error message.

    Raises InputError naming the group and the smallest eigenvalue when that eigenvalue is
    below ``-PSD_TOLERANCE`` (no silent repair), or when the factor misses the matrix by more
    than ``RESIDUAL_TOLERANCE`` (a matrix indefinite beyond rounding); ValueError for a matrix
    that is not square, finite and symmetric.

    The construction: the unpivoted Cholesky-Banachiewicz recurrence, row by row,

        s = matrix[r, c] - sum_{k<c} L[r, k] L[c, k]
        L[c, c] = sqrt(s) if s > 0 else 0              (r == c)
        L[r, c] = s / L[c, c] if L[c, c] > 0 else 0    (r > c)

    A zero pivot (a semidefinite matrix: corr = 1 between two names, or any exact linear
    dependence) leaves its column zero: for a PSD matrix the rest of that column of the Schur
    complement is then zero as well (|s_rc|^2 <= s_rr s_cc), so L L^T = matrix still holds to
    rounding (reference 1).  A pivot that rounding makes a few ulps positive is kept: the column
    below it is rounding over the root of rounding, about 1e-8, and L L^T still holds to about
    n * 2**-53.  The residual check catches the matrices the eigenvalue tolerance lets through
    whose factor would not hold.

    Why this and not LAPACK, pivoting or an eigen-decomposition:

    - Same bits on every machine.  Each sum is ``math.fsum`` of correctly rounded products,
      and ``math.sqrt`` and the division are correctly rounded IEEE operations, so L is a
      fixed function of the matrix's bits; LAPACK's result depends on the BLAS build, its
      blocking and whether the CPU fuses multiply-adds.  A group's paths are L @ z, so L's
      bits are the paths' bits.
    - Differentiable where the correlation sensitivities need it.  On positive definite
      matrices the lower factor with a positive diagonal is unique and a smooth function of the
      entries (``cholesky_derivative``).  Diagonal pivoting would permute the members by the
      size of the pivots, a choice that jumps as a correlation moves (a kink in L, and a
      different mix of streams on either side); an eigenvector square root is not unique
      (signs, and any rotation inside a repeated eigenvalue, which equal correlations produce)
      and is not differentiable at repeated eigenvalues.  At a singular matrix no lower
      factor is differentiable (for two names L[1, 1] = sqrt(1 - rho^2), whose slope is
      infinite at rho = +-1), whatever the construction.
    - Member 0's row is (1, 0, ...): its correlated draw is its own stream's draw, bit for bit.

    The cost is O(n^3) Python operations, milliseconds for the group sizes of a book, paid once
    per group and run, not per path.
    """
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a correlation matrix must be square, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or not np.array_equal(a, a.T):
        raise ValueError("a correlation matrix must be finite and exactly symmetric")
    n = a.shape[0]
    if n and float(np.linalg.eigvalsh(a)[0]) < -PSD_TOLERANCE:
        raise _not_psd(group, a, "")
    rows = a.tolist()
    low = [[0.0] * n for _ in range(n)]
    for r in range(n):
        lr = low[r]
        for c in range(r + 1):
            lc = low[c]
            s = math.fsum([rows[r][c]] + [-lr[k] * lc[k] for k in range(c)])
            if r == c:
                lr[r] = math.sqrt(s) if s > 0.0 else 0.0
            else:
                lr[c] = s / lc[c] if lc[c] > 0.0 else 0.0
    out = np.array(low, dtype=np.float64).reshape(n, n)
    miss = float(np.max(np.abs(out @ out.T - a))) if n else 0.0
    if miss > RESIDUAL_TOLERANCE:
        raise _not_psd(group, a, f", and its Cholesky factor misses it by {miss:.3g}")
    return out


def simulation_groups(names, pairs, together=()):
    """Every simulation group of ``names`` (``groups``, with ``together``) with its Cholesky
    factor: a list of (members, L), in the order of ``groups``.  Every group whose matrix is not
    positive semidefinite is reported, one line each, in one InputError (``raise_problems``)."""
    out, problems = [], []
    for members in groups(names, pairs, together):
        try:
            out.append((members, cholesky(group_matrix(members, pairs), members)))
        except InputError as error:
            problems.append(str(error))
    raise_problems(problems, "correlations")
    return out


def cholesky_derivative(factor, i, j):
    """dL / d rho_ij: the derivative of the lower Cholesky factor L of a positive definite
    correlation matrix Sigma with respect to its (i, j) correlation, which moves the entries
    (i, j) and (j, i) together (d Sigma = e_i e_j^T + e_j e_i^T).

    ``factor`` is L (as ``cholesky`` returns it), i != j positions in its group.  The forward
    mode formula of reference 2 (its eq. 9):

        dL = L Phi(L^-1 dSigma L^-T),   Phi(A) = the lower triangle of A with its diagonal halved

    which follows from dSigma = dL L^T + L dL^T, L^-1 dL being lower triangular.  With dSigma =
    e_i e_j^T + e_j e_i^T, L^-1 dSigma L^-T = u v^T + v u^T with u = L^-1 e_i, v = L^-1 e_j.
    dL is zero above the diagonal and in the rows before max(i, j): the first members' draws
    do not move with a correlation of later ones.

    Raises ValueError when L has a zero on its diagonal (a singular matrix, where L is not
    differentiable: see ``cholesky``) or for bad positions.  Sums are ``math.fsum``, so the
    result has the same bits on every machine, like L.  Costs O(n^3) per pair.
    """
    low = np.asarray(factor, dtype=np.float64)
    n = low.shape[0]
    if not (0 <= i < n and 0 <= j < n) or i == j:
        raise ValueError(f"positions ({i}, {j}) are not two different members of a group of {n}")
    if not np.all(np.diag(low) > 0.0):
        raise ValueError("the correlation matrix is singular (a zero on the diagonal of its "
                         "Cholesky factor): its factor has no derivative there")
    rows = low.tolist()

    def solve(unit):
        # Forward substitution L x = e_unit; x is zero before position `unit`.
        x = [0.0] * n
        for r in range(unit, n):
            s = math.fsum([1.0 if r == unit else 0.0]
                          + [-rows[r][k] * x[k] for k in range(unit, r)])
            x[r] = s / rows[r][r]
        return x

    u, v = solve(i), solve(j)
    # Phi(u v^T + v u^T): lower triangle, diagonal halved (u_a v_a + v_a u_a over 2 = u_a v_a).
    phi = [[(u[a] * v[c] + v[a] * u[c]) if c < a else (u[a] * v[a] if c == a else 0.0)
            for c in range(n)] for a in range(n)]
    out = np.zeros((n, n))
    for r in range(n):
        for c in range(r + 1):
            out[r, c] = math.fsum(rows[r][a] * phi[a][c] for a in range(c, r + 1))
    return out


# --- the law of a multi-asset trade's legs -----------------------------------------------------

#: The smallest eigenvalue a multi-asset trade's own correlation matrix may have: its scores
#: divide by it (C⁻¹), so a (nearly) singular one is refused rather than priced with an
#: exploding variance.
SINGULAR_LIMIT = 1e-8

def singular_legs(record, pairs):
    """The one-line problem of a multi-asset trade (a clean record with ``underlyings``) whose
    names' correlation matrix (from ``pairs``) is singular, or None: its likelihood ratios and
    correlation sensitivities divide by that matrix (``SINGULAR_LIMIT``)."""
    smallest = float(np.linalg.eigvalsh(group_matrix(record["underlyings"], pairs))[0])
    if smallest >= SINGULAR_LIMIT:
        return None
    return (f"trade {record['trade_id']!r}: column 'underlying' has value "
            f"{record['underlying']!r}: the correlation matrix of these names is singular "
            f"(smallest eigenvalue {smallest:.3g}); its likelihood ratios and correlation "
            "sensitivities need it positive definite")


def trade_laws(job):
    """The ``kernel_inputs.Legs`` of a job's multi-asset trades (records with ``legs``: their
    underlyings' places in the group, and ``weights``): the law of each trade's own legs, from
    the group's correlation matrix ``job.correlation`` (``pricers.gbm_multi``), with the pair
    correlations bumped by ``job.pair_bump`` (absolute), clipped to [-1, 1] and to where the
    moved matrix stays positive semidefinite.  Each trade's matrix is positive definite
    (``singular_legs`` was checked on its record)."""
    n, n_trades = len(job.members), len(job.records)
    n_pairs = max([len(r["legs"]) * (len(r["legs"]) - 1) // 2 for r in job.records
                   if r.get("legs")] + [0])
    out = kernel_inputs.Legs(np.zeros((n_trades, n), dtype=np.int64), np.zeros((n_trades, n)),
                             np.zeros((n_trades, n, n)), np.zeros((n_trades, n, n)),
                             np.zeros((n_trades, n_pairs, n, n)),
                             np.zeros((n_trades, n_pairs, 2, n, n)),
                             np.full((n_trades, n_pairs), np.nan),
                             np.full((n_trades, job.n_quantities - G.N_QUANTITIES, 3), -1,
                                     dtype=np.int64),
                             np.zeros((n_trades, n, n)), np.zeros((n_trades, n, n)))
    for j, r in enumerate(job.records):
        idx = list(r.get("legs", ()))
        if not idx:
            continue
        k = len(idx)
        matrix = np.asarray(job.correlation)[np.ix_(idx, idx)]
        factor = cholesky(matrix)
        out.asset[j, :k], out.weight[j, :k] = idx, r["weights"]
        table = heston_multi.measures([job.member_params[a]["model"] for a in idx])
        out.measure[j, :len(table)] = table
        heston = [job.member_params[a]["model"] == "heston" for a in idx]
        if any(heston):
            rho = np.array([job.member_params[a]["corr"] if h else 0.0
                            for a, h in zip(idx, heston)])
            out.cond_mean[j, :k, :k], out.cond_cov[j, :k, :k] = conditional_law(matrix, rho,
                                                                                 heston)
        inverse = lower_inverse(factor)
        out.inverse[j, :k, :k] = inverse
        out.precision[j, :k, :k] = _product(inverse.T, inverse)
        for p, (a, b) in enumerate(gbm_multi.pairs(k)):
            out.d_factor[j, p, :k, :k] = cholesky_derivative(factor, a, b)
            ends = []
            for side, sign in enumerate((1.0, -1.0)):
                moved = matrix.copy()
                c = float(np.clip(matrix[a, b] + sign * job.pair_bump, -1.0, 1.0))
                moved[a, b] = moved[b, a] = c
                try:
                    out.bumped[j, p, side, :k, :k] = cholesky(moved)
                except InputError:      # not PSD: this side stays at the base
                    c = matrix[a, b]
                    out.bumped[j, p, side, :k, :k] = factor
                ends.append(c)
            out.pair_width[j, p] = ends[0] - ends[1]
    return out


def conditional_law(matrix, rho, heston):
    """(M, S): the law of one step's spot noises zs of a trade's legs given its Heston legs'
    variance noises zv, E[zs | zv] = M zv and Cov(zs | zv) = S (Gaussian conditioning; zv of
    leg r in column r of M, a GBM leg's column 0).

    With the legs' spot correlation ``matrix`` C, eps ~ N(0, C), a Heston leg q (``heston[q]``,
    spot-variance correlation rho[q], c_q = sqrt(1 - rho_q²)) has zs_q = c_q eps_q - rho_q Z_q and
    zv_q = rho_q eps_q + c_q Z_q (docs/reference.md#correlations), a GBM leg zs_q = eps_q
    (rho_q = 0, c_q = 1): Cov(zs_q, zs_r) = c_q c_r C_qr + rho_q rho_r δ_qr,
    Cov(zs_q, zv_r) = c_q rho_r C_qr - rho_q c_r δ_qr, Cov(zv_q, zv_r) = rho_q rho_r C_qr +
    c_q c_r δ_qr; M = Cov(zs, zv) Cov(zv)⁻¹ and S = Cov(zs) - M Cov(zv, zs).  S is singular
    only where some |rho_q| = 1 or C is."""
    rho = np.asarray(rho, dtype=float)
    c = np.sqrt(np.maximum(0.0, (1.0 - rho) * (1.0 + rho)))
    h = np.nonzero(heston)[0]
    cov_ss = np.outer(c, c) * matrix + np.diag(rho * rho)
    cov_sv = (np.outer(c, rho) * matrix - np.diag(rho * c))[:, h]
    cov_vv = (np.outer(rho, rho) * matrix + np.diag(c * c))[np.ix_(h, h)]
    mean = np.zeros_like(cov_ss)
    inverse = lower_inverse(cholesky(cov_vv))
    mean[:, h] = _product(cov_sv, _product(inverse.T, inverse))
    return mean, cov_ss - _product(mean[:, h], cov_sv.T)


def lower_inverse(low):
    """L^-1 of a lower-triangular L with a positive diagonal (a positive definite matrix's
    ``cholesky``), by forward substitution with ``math.fsum``, as ``cholesky`` computes L: the
    same bits on every machine, where LAPACK's inverse depends on the BLAS kernels the CPU
    selects.  Lower triangular."""
    n = low.shape[0]
    rows = np.asarray(low, dtype=float).tolist()
    inv = [[0.0] * n for _ in range(n)]
    for j in range(n):
        inv[j][j] = 1.0 / rows[j][j]
        for i in range(j + 1, n):
            inv[i][j] = -math.fsum(rows[i][k] * inv[k][j] for k in range(j, i)) / rows[i][i]
    return np.array(inv, dtype=float).reshape(n, n)


def _product(a, b):
    """a @ b with each entry a ``math.fsum`` of the products (exactly rounded: the same bits on
    every machine); for the few-by-few matrices of a trade's legs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rows, cols = a.tolist(), b.T.tolist()
    return np.array([[math.fsum(x * y for x, y in zip(r, c)) for c in cols] for r in rows],
                    dtype=float).reshape(a.shape[0], b.shape[1])


# --- multi-asset trades -------------------------------------------------------------------------

def _split(cell):
    """The ``;``-separated items of a text cell, each stripped (empty items kept as '')."""
    return [item.strip() for item in str(cell).split(";")]


def _position(k, n):
    return f"item {k} of {n}"


def trade_names(row, market, bad_market=None):
    """The names of ``row``'s ``underlying`` cell (``;``-separated, spaces stripped), as a
    tuple, or None after recording the problems on ``row`` (a ``validation._Row``): an empty
    item, a name not in the market table or whose market row is invalid (each named), a name
    listed twice."""
    raw = row.record.get("underlying")
    if _missing(raw):
        row.fail("underlying", "must list one or more names separated by ';'")
        return None
    bad_market = bad_market or {}
    names = _split(raw)
    ok = True
    for k, name in enumerate(names, start=1):
        if name == "":
            row.fail("underlying", f"{_position(k, len(names))} is empty")
            ok = False
        elif name in bad_market:
            row.fail("underlying", f"{name!r}: its market row is invalid ({bad_market[name]})")
            ok = False
        elif name not in market:
            row.fail("underlying", f"{name!r}: no such underlying in the market table")
            ok = False
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    for name in repeated:
        # One name twice would be one asset with its weights added: almost surely a typo.
        row.fail("underlying", f"{name!r} is listed more than once")
        ok = False
    return tuple(names) if ok else None


def trade_weights(row, n):
    """The ``weights`` of ``row`` as a tuple of ``n`` floats (1 each when the cell is empty),
    or None after recording the problems on ``row``: an item that is not a finite number, or a
    count different from the ``n`` names (not checked when ``n`` is None: no names to count).  A numeric cell (a column pandas read as floats) is
    one weight."""
    raw = row.record.get("weights")
    if _missing(raw):
        return None if n is None else (1.0,) * n
    items = [raw] if not isinstance(raw, str) else _split(raw)
    values, ok = [], True
    for k, item in enumerate(items, start=1):
        x = _number(item)
        if x is None or not math.isfinite(x):
            row.fail("weights", f"{_position(k, len(items))} ({item!r}) must be a finite number")
            ok = False
        values.append(x)
    if n is not None and len(items) != n:
        row.fail("weights", f"has {len(items)} weights for {n} underlyings")
        ok = False
    return tuple(values) if ok else None


def trade_count(row, payoff, names):
    """Record on ``row`` a count of names ``payoff`` does not take (``spread``: exactly two);
    return whether the count is right."""
    if payoff == "spread" and len(names) != 2:
        row.fail("underlying", f"a spread takes exactly two underlyings, got {len(names)}")
        return False
    return True


def trade_rate(row, names, market):
    """Record on ``row`` underlyings of one trade with different ``rate`` in the market table
    (one trade is in one currency, discounted at one rate); return whether they share one.
    The problem names the first two names and rates that differ."""
    first = names[0]
    for name in names[1:]:
        if market[name]["rate"] != market[first]["rate"]:
            row.fail("underlying", f"its underlyings must share one rate: {first!r} has rate "
                                   f"{market[first]['rate']!r}, {name!r} has rate "
                                   f"{market[name]['rate']!r}")
            return False
    return True


def multi_asset_cells(row, payoff, market, bad_market=None):
    """Check the cells of a multi-asset trade on ``row`` (a ``validation._Row`` holding the raw
    record), recording every problem on it.  ``payoff`` is one of ``MULTI_ASSET_PAYOFFS``;
    ``market`` the clean {underlying: parameters} of ``validation.check_market``.  Returns
    {"underlyings": tuple of names, "weights": tuple of floats}, or None when a problem was
    found."""
    names = trade_names(row, market, bad_market)
    raw = row.record.get("underlying")
    # Weights are checked even when a name is bad, so one run reports both problems.
    weights = trade_weights(row, None if _missing(raw) else len(_split(raw)))
    if names is None:
        return None
    ok = trade_count(row, payoff, names) & trade_rate(row, names, market)
    return {"underlyings": names, "weights": weights} if ok and weights is not None else None


def check_multi_asset_trade(record, market, bad_market=None, *, label=None):
    """One multi-asset trade's raw ``record`` (a dict of cells, with ``payoff`` already one of
    ``MULTI_ASSET_PAYOFFS``) checked on its own: returns (clean, problems), clean as
    ``multi_asset_cells`` returns it and problems its one-line messages, each naming the trade
    (``label``, default ``trade '<trade_id>'``), the column and the value."""
    if label is None:
        label = f"trade {_text(record.get('trade_id'))!r}"
    row = _Row(label, record)
    payoff = _text(record.get("payoff"))
    clean = multi_asset_cells(row, None if payoff is None else payoff.lower(), market,
                              bad_market)
    return clean, row.problems
