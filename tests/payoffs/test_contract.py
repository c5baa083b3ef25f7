"""The payoff contract (``mcgreeks.payoffs``) checked kernel by kernel, for every kind.

A payoff reads path i through the view y = a + b·grid[g] + c·X[g, i] at its own dates.  Each
kernel is compared with a plain NumPy computation written here: the quantity u, the last log-spot
and the extreme by direct evaluation; the date weights ω_k = ∂u/∂y_k by central differences of
that NumPy u in each y_k, which pins what ``quantity``'s moments and ``contract`` must hold
(∂u/∂θ = Σ_k ω_k ∂y_k/∂θ, the chain rule through the dates); the continuous barrier's bridge
survival against the reflection formula (Glasserman 2004, §6.4), its own difference quotients and
a brute-force simulation of Brownian bridges.
"""
import math

import numpy as np
import pytest

from mcgreeks import payoffs as P

# -- the trades ------------------------------------------------------------------------------------

#: A grid holding several trades' dates (irregular, as a union grid is), 14 dates.
GRID = np.array([0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8, 0.9, 1.0, 1.25, 1.5])
#: The trade under test reads these grid indices; another trade's 3 dates come first in fix_idx,
#: so its FIX_OFF is not 0.
DATES = np.array([1, 3, 5, 8, 11])
OTHER = np.array([0, 6, 13])
FIX_IDX = np.concatenate([OTHER, DATES]).astype(np.int64)
A, B, C = math.log(100.0), 0.02, 0.3         # ln S0, drift, vol of the view
M = 7                                         # paths


def _x(seed=1):
    """Brownian state rows X[g, i] on GRID for M paths (seeded)."""
    rng = np.random.default_rng(seed)
    dt = np.diff(np.concatenate([[0.0], GRID]))
    return np.cumsum(rng.standard_normal((GRID.size, M)) * np.sqrt(dt)[:, None], axis=0)


X = _x()


def trade(kind, omega=1.0, strike=100.0, cash=1.0, level=1.0, down=0, knock_in=0,
          continuous=0, control=0, dates=DATES):
    """(ti, tf) rows in the int/float column layout of ``payoffs``; continuous monitoring and the
    one-date payoffs read their last date only."""
    n = dates.size if P.reads_fixings(kind, bool(continuous)) else 1
    ti = np.zeros(P.N_INT_COLUMNS, dtype=np.int64)
    tf = np.zeros(P.N_FLOAT_COLUMNS)
    ti[[P.KIND, P.DOWN, P.KNOCK_IN, P.CONTINUOUS, P.FIX_OFF, P.FIX_N, P.CONTROL]] = (
        kind, down, knock_in, continuous, OTHER.size + dates.size - n, n, control)
    tf[[P.OMEGA, P.STRIKE, P.CASH, P.LEVEL, P.MATURITY]] = (omega, strike, cash, level,
                                                            GRID[dates[-1]])
    return ti, tf


#: Every kind, with the column values that change how it reads the path.
CASES = {
    "european call": trade(P.EUROPEAN),
    "european put": trade(P.EUROPEAN, omega=-1.0),
    "digital": trade(P.DIGITAL, cash=5.0),
    "asian arithmetic": trade(P.ASIAN_ARITHMETIC),
    "asian arithmetic with control": trade(P.ASIAN_ARITHMETIC, control=1),
    "asian geometric": trade(P.ASIAN_GEOMETRIC, omega=-1.0),
    "barrier up-out": trade(P.BARRIER, level=120.0),
    "barrier up-in": trade(P.BARRIER, level=120.0, knock_in=1),
    "barrier down-out": trade(P.BARRIER, level=85.0, down=1),
    "barrier down-in": trade(P.BARRIER, level=85.0, down=1, knock_in=1, omega=-1.0),
    "barrier continuous": trade(P.BARRIER, level=85.0, down=1, continuous=1),
    "lookback call": trade(P.LOOKBACK),
    "lookback put": trade(P.LOOKBACK, omega=-1.0),
}


def _takes_min(ti, tf):
    return (ti[P.KIND] == P.BARRIER and ti[P.DOWN] == 1) or (
        ti[P.KIND] == P.LOOKBACK and tf[P.OMEGA] < 0)


def _reads_extreme(ti):
    """Whether the trade's payoff reads the extreme of its path (so ``quantity`` carries it)."""
    return ti[P.KIND] == P.LOOKBACK or (ti[P.KIND] == P.BARRIER and ti[P.CONTINUOUS] == 0)


# -- the NumPy reference ---------------------------------------------------------------------------

def grid_indices(ti):
    return FIX_IDX[ti[P.FIX_OFF]:ti[P.FIX_OFF] + ti[P.FIX_N]]


def log_spots(ti, i, x=X):
    """y_k = a + b t_k + c X[g_k, i] at the trade's dates."""
    g = grid_indices(ti)
    return A + B * GRID[g] + C * x[g, i]


def u_of(ti, tf, y):
    """The payoff's underlying quantity from its log-spots y (payoffs' module docstring)."""
    kind = ti[P.KIND]
    if kind == P.ASIAN_ARITHMETIC:
        return np.mean(np.exp(y))
    if kind == P.ASIAN_GEOMETRIC:
        return np.exp(np.mean(y))
    if kind == P.LOOKBACK:
        return np.exp(y.min() if tf[P.OMEGA] < 0 else y.max())
    return np.exp(y[-1])


def weights(ti, tf, y, h=1e-5):
    """ω_k = ∂u/∂y_k by central differences of ``u_of`` (error O(h²) relative)."""
    out = np.empty(y.size)
    for k in range(y.size):
        up, down = y.copy(), y.copy()
        up[k] += h
        down[k] -= h
        out[k] = (u_of(ti, tf, up) - u_of(ti, tf, down)) / (2.0 * h)
    return out


def accumulated(kind, ti, tf, x=X, twin=False):
    acc = np.full((P.N_ACC, M + 3), np.nan)        # wider than the tile: only :m is written
    P.accumulate(kind, ti, tf, FIX_IDX, GRID, x, M, A, B, C, twin, acc)
    return acc


# -- reading the path ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_observe_reads_u_last_log_spot_and_extreme(case):
    ti, tf = CASES[case]
    for i in range(M):
        y = log_spots(ti, i)
        u, last, extreme = P.observe(ti[P.KIND], ti, tf, FIX_IDX, GRID, X, i, A, B, C)
        np.testing.assert_allclose(u, u_of(ti, tf, y), rtol=1e-14)
        np.testing.assert_allclose(last, y[-1], rtol=1e-15)
        if ti[P.KIND] not in (P.ASIAN_ARITHMETIC, P.ASIAN_GEOMETRIC):
            np.testing.assert_allclose(extreme, y.min() if _takes_min(ti, tf) else y.max(),
                                       rtol=1e-15)


@pytest.mark.parametrize("case", CASES)
def test_accumulate_and_quantity_agree_with_observe_and_the_date_weights(case):
    """u and the extreme as ``observe``; Σω, Σω t, Σω X as NumPy's with ω from differences."""
    ti, tf = CASES[case]
    kind = ti[P.KIND]
    acc = accumulated(kind, ti, tf)
    assert np.isnan(acc[:, M:]).all(), "accumulate wrote beyond its m paths"
    t_mean = P.mean_date(ti, FIX_IDX, GRID)
    g = grid_indices(ti)
    np.testing.assert_allclose(t_mean, GRID[g].mean(), rtol=1e-15)
    for i in range(M):
        u, extreme, sw, swt, swx = P.quantity(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C,
                                              t_mean)
        u_obs, _, extreme_obs = P.observe(kind, ti, tf, FIX_IDX, GRID, X, i, A, B, C)
        np.testing.assert_allclose(u, u_obs, rtol=1e-14)
        if _reads_extreme(ti):
            assert extreme == extreme_obs
        w = weights(ti, tf, log_spots(ti, i))
        np.testing.assert_allclose([sw, swt, swx], [w.sum(), w @ GRID[g], w @ X[g, i]],
                                   rtol=1e-8, err_msg=case)


def test_an_arithmetic_asians_twin_is_the_geometric_asian_of_the_same_dates():
    """``accumulate`` with ``twin`` also sums X, and ``quantity`` of kind ASIAN_GEOMETRIC then
    reads the arithmetic trade's geometric twin: exp of the mean log-spot, with its weights."""
    ti, tf = CASES["asian arithmetic with control"]
    acc = accumulated(P.ASIAN_ARITHMETIC, ti, tf, twin=True)
    t_mean = P.mean_date(ti, FIX_IDX, GRID)
    g = grid_indices(ti)
    geometric = ti.copy()
    geometric[P.KIND] = P.ASIAN_GEOMETRIC
    for i in range(M):
        u, _, sw, swt, swx = P.quantity(P.ASIAN_GEOMETRIC, ti, FIX_IDX, GRID, X, acc, i, A, B, C,
                                        t_mean)
        y = log_spots(ti, i)
        w = weights(geometric, tf, y)
        np.testing.assert_allclose(u, np.exp(y.mean()), rtol=1e-14)
        np.testing.assert_allclose([sw, swt, swx], [w.sum(), w @ GRID[g], w @ X[g, i]],
                                   rtol=1e-8)
        # and the arithmetic quantity itself is untouched by the twin's sums
        u_arith = P.quantity(P.ASIAN_ARITHMETIC, ti, FIX_IDX, GRID, X, acc, i, A, B, C, t_mean)[0]
        np.testing.assert_allclose(u_arith, np.exp(y).mean(), rtol=1e-14)



@pytest.mark.parametrize("case", CASES)
def test_tile_quantity_is_quantity_bit_for_bit(case):
    """The GBM pricer fills has_tile_quantity payoffs' rows from tile_quantity and every other
    payoff's from quantity: the two must agree to the bit."""
    ti, tf = CASES[case]
    kind = ti[P.KIND]
    if not P.has_tile_quantity(kind):
        return
    acc = accumulated(kind, ti, tf)
    t_mean = P.mean_date(ti, FIX_IDX, GRID)
    rows = np.full((4, M), np.nan)
    P.tile_quantity(kind, ti, FIX_IDX, GRID, X, acc, M, A, B, C, t_mean, *rows)
    expected = np.array([[P.quantity(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C, t_mean)[r]
                          for i in range(M)] for r in (0, 2, 3, 4)])
    assert np.array_equal(rows.view(np.int64), expected.view(np.int64)), case

@pytest.mark.parametrize("case", CASES)
def test_contract_chains_tangent_rows_through_the_date_weights(case):
    """out[out_row + d, i] = Σ_k ω_k R[d, g_k, i] for d in first..end-1, other rows untouched;
    an affine row α + β t + γ X gives α Σω + β Σω t + γ Σω X (``quantity``'s moments)."""
    ti, tf = CASES[case]
    kind = ti[P.KIND]
    rng = np.random.default_rng(7)
    n_rows, first, end, out_row = 5, 1, 4, 2
    rows = rng.standard_normal((n_rows, GRID.size, M))
    acc = accumulated(kind, ti, tf)
    t_mean = P.mean_date(ti, FIX_IDX, GRID)
    g = grid_indices(ti)
    out = np.full((out_row + n_rows + 1, M), -7.0)
    for i in range(M):
        u = P.quantity(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C, t_mean)[0]
        P.contract(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C, u, rows, first, end, out, out_row)
    for i in range(M):
        w = weights(ti, tf, log_spots(ti, i))
        expected = rows[first:end][:, g, i] @ w
        np.testing.assert_allclose(out[out_row + first:out_row + end, i], expected, rtol=1e-8,
                                   err_msg=case)
    untouched = np.ones(out.shape[0], dtype=bool)
    untouched[out_row + first:out_row + end] = False
    assert (out[untouched] == -7.0).all()

    alpha, beta, gamma = rng.standard_normal((3, n_rows))
    affine = (alpha[:, None, None] + beta[:, None, None] * GRID[None, :, None]
              + gamma[:, None, None] * X[None])
    out = np.zeros((n_rows, M))
    for i in range(M):
        u, _, sw, swt, swx = P.quantity(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C, t_mean)
        P.contract(kind, ti, FIX_IDX, GRID, X, acc, i, A, B, C, u, affine, 0, n_rows, out, 0)
        np.testing.assert_allclose(out[:, i], alpha * sw + beta * swt + gamma * swx, rtol=1e-12,
                                   atol=1e-12 * u, err_msg=case)


# -- cash flows and knocks -------------------------------------------------------------------------

def test_value_and_slope_are_the_payoff_function_and_its_derivative():
    rng = np.random.default_rng(3)
    for u in rng.uniform(50.0, 150.0, 20):
        for omega in (1.0, -1.0):
            assert P.value(P.EUROPEAN, omega, 100.0, 1.0, u) == max(omega * (u - 100.0), 0.0)
            assert P.value(P.DIGITAL, omega, 100.0, 4.0, u) == (4.0 if omega * (u - 100.0) > 0
                                                                else 0.0)
            assert P.slope(P.DIGITAL, omega, 100.0, 4.0, u) == 0.0
            for kind in (P.EUROPEAN, P.ASIAN_ARITHMETIC, P.LOOKBACK, P.BARRIER):
                h = 1e-6
                quotient = (P.value(kind, omega, 100.0, 1.0, u + h)
                            - P.value(kind, omega, 100.0, 1.0, u - h)) / (2 * h)
                np.testing.assert_allclose(P.slope(kind, omega, 100.0, 1.0, u), quotient,
                                           atol=1e-8)
    assert P.value(P.EUROPEAN, 1.0, 100.0, 1.0, 100.0) == 0.0      # at the money: no cash


@pytest.mark.parametrize("down, level", [(1, 85.0), (0, 120.0)])
@pytest.mark.parametrize("omega", [1.0, -1.0])
def test_knock_in_plus_knock_out_is_the_vanilla(down, level, omega):
    vanilla_ti, vanilla_tf = trade(P.EUROPEAN, omega=omega)
    out_ti, tf = trade(P.BARRIER, omega=omega, level=level, down=down)
    in_ti, _ = trade(P.BARRIER, omega=omega, level=level, down=down, knock_in=1)
    log_h = math.log(level)
    knocked_somewhere = alive_somewhere = False
    for seed in range(20):
        for scale in (0.3, 1.0, 3.0):       # wider paths touch the barrier
            x = _x(seed) * scale
            for i in range(M):
                _, _, extreme = P.observe(P.BARRIER, out_ti, tf, FIX_IDX, GRID, x, i, A, B, C)
                u = P.observe(P.EUROPEAN, vanilla_ti, vanilla_tf, FIX_IDX, GRID, x, i, A, B,
                              C)[0]
                f_out = P.cash_flow(P.BARRIER, out_ti, tf, u, extreme)
                f_in = P.cash_flow(P.BARRIER, in_ti, tf, u, extreme)
                f = P.cash_flow(P.EUROPEAN, vanilla_ti, vanilla_tf, u, extreme)
                assert f == max(omega * (u - 100.0), 0.0)
                assert f_in + f_out == f
                touched = (extreme <= log_h) if down else (extreme >= log_h)
                assert f_out == (0.0 if touched else f)
                knocked_somewhere |= touched and f > 0
                alive_somewhere |= not touched and f > 0
    assert knocked_somewhere and alive_somewhere, "the paths do not exercise both states"


@pytest.mark.parametrize("down", [1, 0])
def test_a_discrete_barrier_knocks_on_touching(down):
    """Touching the level counts (≤ for a down barrier, ≥ for an up one); one ulp on the alive
    side does not."""
    level = 90.0 if down else 110.0
    log_h = math.log(level)
    alive_side = np.nextafter(log_h, math.inf if down else -math.inf)
    far_side = np.nextafter(log_h, -math.inf if down else math.inf)
    for knock_in in (0, 1):
        ti, tf = trade(P.BARRIER, level=level, down=down, knock_in=knock_in)
        assert P.discrete_survival(ti, tf, log_h) == 0.0
        assert P.discrete_survival(ti, tf, far_side) == 0.0
        assert P.discrete_survival(ti, tf, alive_side) == 1.0
        for survival in (0.0, 0.3, 1.0):
            assert P.knock_weight(ti, survival) == (1.0 - survival if knock_in else survival)
        u = 130.0 if down else 70.0                    # in the money for a call (put) below
        tf[P.OMEGA] = 1.0 if down else -1.0
        paid = abs(u - 100.0)
        assert P.cash_flow(P.BARRIER, ti, tf, u, log_h) == (paid if knock_in else 0.0)
        assert P.cash_flow(P.BARRIER, ti, tf, u, alive_side) == (0.0 if knock_in else paid)


def test_survival_is_one_for_payoffs_without_a_discrete_barrier():
    """Other payoffs, and a continuous barrier (whose weight the caller applies from the
    model's bridge), are paid f(u) whatever the extreme."""
    for case in ("european call", "digital", "asian arithmetic", "lookback put",
                 "barrier continuous"):
        ti, tf = CASES[case]
        for extreme in (-10.0, math.log(tf[P.LEVEL]), 10.0):
            assert P.discrete_survival(ti, tf, extreme) == 1.0
            assert P.cash_flow(ti[P.KIND], ti, tf, 120.0, extreme) == P.value(
                ti[P.KIND], tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], 120.0)


# -- continuous monitoring -------------------------------------------------------------------------

def reflection(down, log_h, y0, y1, var):
    """1 - exp(-2ab/var) (Glasserman 2004, §6.4), 0 with an end on the far side."""
    s = 1.0 if down else -1.0
    a, b = s * (y0 - log_h), s * (y1 - log_h)
    return 0.0 if a <= 0 or b <= 0 else 1.0 - math.exp(-2.0 * a * b / var)


BRIDGES = [(True, math.log(90.0), math.log(100.0), math.log(95.0), 0.04),
           (True, math.log(80.0), math.log(100.0), math.log(120.0), 0.09),
           (False, math.log(110.0), math.log(100.0), math.log(104.0), 0.01),
           (False, math.log(150.0), math.log(90.0), math.log(140.0), 0.25)]


@pytest.mark.parametrize("bridge", BRIDGES)
def test_bridge_survival_is_the_reflection_formula_with_its_derivatives(bridge):
    down, log_h, y0, y1, var = bridge
    p, dy0, dy1, dvar, d2y0 = P.bridge_survival(down, log_h, y0, y1, var)
    np.testing.assert_allclose(p, reflection(down, log_h, y0, y1, var), rtol=1e-14)
    assert 0.0 < p < 1.0
    f = lambda *args: reflection(down, log_h, *args)  # noqa: E731
    h = 1e-6
    np.testing.assert_allclose(dy0, (f(y0 + h, y1, var) - f(y0 - h, y1, var)) / (2 * h),
                               rtol=1e-6)
    np.testing.assert_allclose(dy1, (f(y0, y1 + h, var) - f(y0, y1 - h, var)) / (2 * h),
                               rtol=1e-6)
    np.testing.assert_allclose(dvar, (f(y0, y1, var + h) - f(y0, y1, var - h)) / (2 * h),
                               rtol=1e-6)
    h = 1e-4
    np.testing.assert_allclose(
        d2y0, (f(y0 + h, y1, var) - 2 * f(y0, y1, var) + f(y0 - h, y1, var)) / h**2, rtol=1e-5)


@pytest.mark.parametrize("down", [True, False])
def test_bridge_survival_zero_beyond_the_barrier_and_one_without_variance(down):
    log_h = 0.0
    alive, beyond = (0.1, -0.1) if down else (-0.1, 0.1)
    for y0, y1 in ((beyond, alive), (alive, beyond), (beyond, beyond), (log_h, alive),
                   (alive, log_h)):
        for var in (0.0, 0.04):
            assert P.bridge_survival(down, log_h, y0, y1, var) == (0.0,) * 5
    assert P.bridge_survival(down, log_h, alive, alive, 0.0) == (1.0, 0.0, 0.0, 0.0, 0.0)


def simulated_survival(down, log_h, y0, y1, var, n_bridges=20_000, n_steps=2000, seed=11):
    """Fraction of simulated bridges y0 + (y1 - y0) s + √var (W_s - s W_1) that stay alive at
    n_steps + 1 equally spaced points, the level moved 0.5826 √(var/n_steps) towards the path
    (the Broadie–Glasserman–Kou continuity correction, Glasserman 2004 §6.4, read backwards:
    discrete monitoring of the fine path at the moved level stands for continuous monitoring at
    the level to o(√Δs)); returns (estimate, SE)."""
    rng = np.random.default_rng(seed)
    shift = 0.5826 * math.sqrt(var / n_steps) * (1.0 if down else -1.0)
    s = np.arange(1, n_steps + 1) / n_steps
    alive = 0
    for _ in range(n_bridges // 1000):
        w = np.cumsum(rng.standard_normal((1000, n_steps)), axis=1) / math.sqrt(n_steps)
        path = y0 + (y1 - y0) * s + math.sqrt(var) * (w - s * w[:, -1:])
        extreme = path.min(axis=1) if down else path.max(axis=1)
        alive += np.count_nonzero(extreme > log_h + shift if down else extreme < log_h + shift)
    p = alive / n_bridges
    return p, math.sqrt(p * (1 - p) / n_bridges)


@pytest.mark.parametrize("bridge", BRIDGES[:3])
def test_bridge_survival_matches_simulated_brownian_bridges(bridge):
    down, log_h, y0, y1, var = bridge
    p = P.bridge_survival(down, log_h, y0, y1, var)[0]
    estimate, se = simulated_survival(down, log_h, y0, y1, var)
    assert se < 0.004                          # 4 SE under 0.016: a meaningful comparison
    assert abs(estimate - p) < 4 * se, (estimate, p, se)


# -- dates and classes -----------------------------------------------------------------------------

#: kind, continuous -> (reads its fixings, smoothness class, one date), from the module's
#: documentation: averages, extremes and a discrete barrier read n dates; a continuous barrier
#: integrates its path between dates out; a digital and a discrete barrier jump; payoffs on
#: several underlyings read their maturity but are no single-asset "one date" payoff.
CLASSES = {
    (P.EUROPEAN, False): (False, P.LIPSCHITZ, True),
    (P.DIGITAL, False): (False, P.JUMP, True),
    (P.ASIAN_ARITHMETIC, False): (True, P.LIPSCHITZ, False),
    (P.ASIAN_GEOMETRIC, False): (True, P.LIPSCHITZ, False),
    (P.BARRIER, False): (True, P.JUMP, False),
    (P.BARRIER, True): (False, P.BRIDGED, False),
    (P.LOOKBACK, False): (True, P.LIPSCHITZ, False),
    (P.BASKET, False): (False, P.LIPSCHITZ, False),
    (P.BEST_OF, False): (False, P.LIPSCHITZ, False),
    (P.WORST_OF, False): (False, P.LIPSCHITZ, False),
    (P.SPREAD, False): (False, P.LIPSCHITZ, False),
}


def test_every_kind_has_a_class():
    assert {kind for kind, _ in CLASSES} == set(P.KINDS.values())
    assert P.DISCONTINUOUS == {k for (k, c), v in CLASSES.items() if v[1] == P.JUMP}


@pytest.mark.parametrize("kind, continuous", CLASSES)
def test_schedule_reads_fixings_smoothness_one_date_and_jumps(kind, continuous):
    fixings, smooth, one = CLASSES[(kind, continuous)]
    assert P.reads_fixings(kind, continuous) == fixings
    assert P.schedule(kind, continuous, 2.0, 12) == (12 if fixings else 1)
    assert P.schedule(kind, continuous, 2.0, 1) == 1
    assert P.smoothness(kind, continuous) == smooth
    assert P.one_date(kind) == one
    ti, tf = trade(kind, continuous=int(continuous))
    assert P.jumps(ti) == (smooth == P.JUMP)
    assert P.payment_time(kind, tf) == tf[P.MATURITY]
