"""Correlated multi-asset GBM trades (mcgreeks.pricers.gbm_multi) against closed forms and an
independent Monte Carlo, within 4 standard errors, read from the long risk table.

References (each checked on its own in tests/analytic/test_multi_asset.py and
tests/analytic/test_black_scholes.py):
* best_of / worst_of: Stulz's closed form (R. M. Stulz, J. Financial Economics 10 (1982)),
  ``analytic.multi_asset.best_of`` / ``worst_of``;
* spread with K = 0: Margrabe's exchange option (W. Margrabe, J. Finance 33 (1978)),
  ``analytic.multi_asset.exchange``; K > 0: ``analytic.multi_asset.spread`` (quadrature);
* basket of 2, 3 and 5 assets: ``analytic.multi_asset.basket`` (conditional Gauss–Hermite
  quadrature after J. Choi, J. Futures Markets 38 (2018));
* basket of 10 assets: a plain NumPy Monte Carlo written here (``_numpy_basket``);
* a European on a correlated name: Black–Scholes–Merton, ``analytic.black_scholes.european``.
Their Greeks are exact (central differences at 1e-4, truncation ~1e-8 relative); the fd
estimator is unbiased for the difference quotient at its own bumps (``estimators.fd``: spot,
vol, maturity 1 % relative, rate 10 bp, pair correlation 0.01), so it is compared with the same
quotient of the closed form (as tests/pricers/test_gbm_path_dependent.py does).

Every comparison also requires 4 SE <= MEANINGFUL (5 %) of the measure's natural size
(``_scales``), so that a pass says something.
"""
import itertools
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mc_checks import MEANINGFUL
from mcgreeks import price_portfolio
from mcgreeks.analytic import black_scholes as bs
from mcgreeks.analytic import multi_asset as ma
from mcgreeks.estimators import fd

SEED = 19
RATE = 0.03
#: name: (spot, vol, div_yield)
NAMES = {"A": (100.0, 0.20, 0.01), "B": (90.0, 0.30, 0.02), "C": (110.0, 0.25, 0.0),
         "D": (50.0, 0.35, 0.03), "E": (75.0, 0.15, 0.0)}
#: Pair correlations of A..E (one group; B-D, B-E unlisted: 0); smallest eigenvalue 0.22.
CORR = {("A", "B"): 0.5, ("A", "C"): 0.3, ("B", "C"): -0.2, ("C", "D"): -0.4, ("A", "D"): 0.1,
        ("D", "E"): 0.3, ("A", "E"): 0.2, ("C", "E"): 0.1}
#: The 10-asset basket's own group: one factor, loadings of both signs (C = b bᵀ off the
#: diagonal is positive definite since every |b_i| < 1).
BIG = [f"N{i}" for i in range(10)]
BIG_LOAD = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, -0.1, -0.3, 0.5])
NAMES |= {n: (40.0 + 8.0 * i, 0.15 + 0.03 * i, 0.003 * (i % 4)) for i, n in enumerate(BIG)}
CORR |= {(BIG[i], BIG[j]): BIG_LOAD[i] * BIG_LOAD[j]
         for i, j in itertools.combinations(range(10), 2)}

MARKET = pd.DataFrame([dict(underlying=n, model="gbm", spot=s, rate=RATE, div_yield=q, vol=v)
                       for n, (s, v, q) in NAMES.items()])
CORRELATIONS = pd.DataFrame([dict(underlying_1=a, underlying_2=b, corr=c)
                             for (a, b), c in CORR.items()])

Case = namedtuple("Case", "trade_id payoff option_type underlying weights strike maturity")
STULZ = [Case(*c) for c in [
    ("bo_call_AB", "best_of", "call", "A;B", None, 100.0, 1.0),          # rho +0.5
    ("bo_call_BC", "best_of", "call", "B;C", "1;0.8", 95.0, 1.5),        # rho -0.2
    ("bo_put_DC", "best_of", "put", "D;C", "2;1", 115.0, 0.5),           # rho -0.4, names reversed
    ("bo_put_EA", "best_of", "put", "E;A", "1.3;1", 100.0, 1.0),         # rho +0.2
    ("wo_call_CA", "worst_of", "call", "C;A", "1;1.1", 95.0, 2.0),       # rho +0.3
    ("wo_call_DE", "worst_of", "call", "D;E", "1.5;1", 70.0, 1.0),       # rho +0.3
    ("wo_put_BE", "worst_of", "put", "B;E", None, 85.0, 1.0),            # rho 0 (unlisted)
    ("wo_put_CD", "worst_of", "put", "C;D", "1;2.2", 105.0, 0.75)]]      # rho -0.4
SPREADS = [Case(*c) for c in [
    ("exch_call_AB", "spread", "call", "A;B", None, 0.0, 1.0),           # Margrabe
    ("exch_put_EB", "spread", "put", "E;B", "1.2;1", 0.0, 0.5),          # Margrabe, rho 0
    ("spr_call_AC", "spread", "call", "A;C", None, 5.0, 1.0),
    ("spr_put_CD", "spread", "put", "C;D", "1;2", 8.0, 2.0)]]            # rho -0.4
BASKETS = [Case(*c) for c in [
    ("bk2_call_AB", "basket", "call", "A;B", None, 190.0, 1.0),
    ("bk2_put_DC", "basket", "put", "D;C", "2;0.5", 150.0, 0.5),         # rho -0.4
    ("bk3_call_BAC", "basket", "call", "B;A;C", "1;1;1", 300.0, 1.0),    # rho -0.2, 0.3, 0.5
    ("bk3_put_ECA", "basket", "put", "E;C;A", "1;-0.5;1.2", 140.0, 1.5)]]  # a negative weight
BASKET5 = Case("bk5_call", "basket", "call", "A;B;C;D;E", "0.5;1;0.8;2;-0.6", 285.0, 1.0)
EUROPEANS = [Case("eu_call_A", "european", "call", "A", None, 105.0, 1.0),
             Case("eu_put_D", "european", "put", "D", None, 48.0, 0.5)]
BIG_WEIGHTS = np.array([1.0, 0.5, 0.8, 1.2, 0.6, 0.4, 1.0, 0.7, -0.5, 0.9])
BIG_BASKET = Case("bk10_call", "basket", "call", ";".join(BIG),
                  ";".join(f"{w:g}" for w in BIG_WEIGHTS), 480.0, 1.0)

#: The estimator each measure of a multi-asset trade should report, per ``method``.
FIRST, SECOND = ("delta", "vega", "d_pair_corr", "rho", "theta"), ("gamma", "cross_gamma")
EXPECTED_METHOD = {"auto": dict.fromkeys(FIRST, "pathwise") | dict.fromkeys(SECOND, "mixed"),
                   "lr": dict.fromkeys(FIRST + SECOND, "lr"),
                   "fd": dict.fromkeys(FIRST + SECOND, "fd")}
#: ... and a single-asset trade (auto: the variance-optimal pathwise/lr blend).
EXPECTED_SINGLE = {"auto": "optimal", "lr": "lr", "fd": "fd"}


def _book(cases):
    return pd.DataFrame([c._asdict() for c in cases])


def _legs(case):
    """names, spots, vols, yields, weights and the correlation matrix of a case's legs."""
    names = case.underlying.split(";")
    s, v, q = (np.array([NAMES[n][i] for n in names]) for i in range(3))
    w = (np.ones(len(names)) if case.weights is None
         else np.array([float(x) for x in case.weights.split(";")]))
    c = np.array([[1.0 if a == b else CORR.get((a, b), CORR.get((b, a), 0.0)) for b in names]
                  for a in names])
    return names, s, v, q, w, c


def _closed_form(case):
    """The reference function of a case and its keyword arguments (the market of its legs)."""
    names, s, v, q, w, c = _legs(case)
    kw = dict(spots=s, maturity=case.maturity, rate=RATE, vols=v, div_yields=q,
              is_call=case.option_type == "call")
    if case.payoff == "european":
        def european(spots, vols, div_yields, corr, weights, **rest):
            out = bs.european(spot=spots[0], vol=vols[0], div_yield=div_yields[0], **rest)
            return {k: np.atleast_1d(x) if k in ("delta", "gamma", "vega") else x
                    for k, x in out.items()} | {"pairs": (), "cross_gamma": [], "d_pair_corr": []}
        return european, kw | dict(strike=case.strike, corr=c, weights=w)
    if case.payoff == "spread" and case.strike == 0.0:
        return ma.exchange, kw | dict(corr=c, weights=w)
    fn = {"best_of": ma.best_of, "worst_of": ma.worst_of, "spread": ma.spread,
          "basket": ma.basket}[case.payoff]
    return fn, kw | dict(corr=c, weights=w, strike=case.strike)


def _fd_quotients(fn, kw):
    """The central difference quotients of the closed-form price at the fd estimator's bumps
    (``estimators.fd``; cross-gamma: the four corners S_k(1 ± h), S_l(1 ± h))."""
    def price(**moved):
        return fn(**(kw | moved))["price"]

    def moved(arr, *steps):
        out = np.array(arr, dtype=float)
        for i, h in steps:
            out[i] *= 1.0 + h
        return out

    s, v, c, t = kw["spots"], kw["vols"], kw["corr"], kw["maturity"]
    hs, hv, hr, ht, hc = fd.SPOT_REL, fd.VOL_REL, fd.RATE_ABS, fd.MATURITY_REL, fd.PAIR_CORR_ABS
    n = len(s)
    p0 = price()
    up = [price(spots=moved(s, (k, hs))) for k in range(n)]
    down = [price(spots=moved(s, (k, -hs))) for k in range(n)]
    pairs = tuple(itertools.combinations(range(n), 2))

    def corner(k, l):
        return sum(a * b * price(spots=moved(s, (k, a * hs), (l, b * hs)))
                   for a in (1, -1) for b in (1, -1)) / (4 * hs * hs * s[k] * s[l])

    def corr_moved(k, l, h):
        out = np.array(c, dtype=float)
        out[k, l] += h
        out[l, k] += h
        return out

    return {
        "price": p0,
        "delta": np.array([(up[k] - down[k]) / (2 * hs * s[k]) for k in range(n)]),
        "gamma": np.array([(up[k] - 2 * p0 + down[k]) / (hs * s[k]) ** 2 for k in range(n)]),
        "vega": np.array([(price(vols=moved(v, (k, hv))) - price(vols=moved(v, (k, -hv))))
                          / (2 * hv * v[k]) for k in range(n)]),
        "pairs": pairs,
        "cross_gamma": np.array([corner(k, l) for k, l in pairs]),
        "d_pair_corr": np.array([(price(corr=corr_moved(k, l, hc))
                                  - price(corr=corr_moved(k, l, -hc))) / (2 * hc)
                                 for k, l in pairs]),
        "rho": (price(rate=RATE + hr) - price(rate=RATE - hr)) / (2 * hr),
        "theta": -(price(maturity=t * (1 + ht)) - price(maturity=t * (1 - ht))) / (2 * ht * t),
    }


_REFERENCES = {}


def _reference(case, method):
    """The closed-form price and Greeks of ``case`` (exact, or the fd quotients for "fd")."""
    key = (case.trade_id, method == "fd")
    if key not in _REFERENCES:
        fn, kw = _closed_form(case)
        _REFERENCES[key] = _fd_quotients(fn, kw) if method == "fd" else fn(**kw)
    return _REFERENCES[key]


def _scales(case):
    """Natural size of each measure of ``case``, per leg (k, l): with v_k = w_k S_k σ_k √T and
    U the standard deviation of the payoff's underlying quantity (√(vᵀCv) for a basket or a
    spread, max |v_k| for best/worst-of), an at-the-money option is worth about 0.4 U, so:
    price U, delta |w_k|, gamma w_k²/U, cross-gamma |w_k w_l|/U, vega |w_k| S_k √T,
    d_pair_corr |v_k v_l|/U (= ∂U/∂ρ_kl), rho T Σ|w_k| S_k, theta U/T.  (One asset: these are
    mc_checks.natural_scale's, except price: S σ√T instead of S, stricter.)"""
    names, s, vol, q, w, c = _legs(case)
    t = case.maturity
    v = w * s * vol * np.sqrt(t)
    if case.payoff == "spread":
        v = v * np.array([1.0, -1.0])
    u = np.sqrt(v @ c @ v) if case.payoff in ("basket", "spread", "european") else np.abs(v).max()
    aw = np.abs(w)
    return {"price": lambda k, l: u, "delta": lambda k, l: aw[k],
            "gamma": lambda k, l: aw[k] ** 2 / u, "cross_gamma": lambda k, l: aw[k] * aw[l] / u,
            "vega": lambda k, l: aw[k] * s[k] * np.sqrt(t),
            "d_pair_corr": lambda k, l: abs(v[k] * v[l]) / u,
            "rho": lambda k, l: t * (aw @ s), "theta": lambda k, l: u / t}


def _compare(case, rows, ref, method):
    """Every risk row of ``case`` against ``ref`` (the layout of analytic.multi_asset): the
    measure set, the estimator named, |mc - ref| <= 4 SE and 4 SE <= MEANINGFUL of its natural
    size.  Returns the failures (strings) and the z-scores."""
    names = case.underlying.split(";")
    n = len(names)
    pairs = list(itertools.combinations(range(n), 2))
    single = case.payoff == "european"
    want = (["price"] + [m for m in ("delta", "gamma", "vega") for _ in range(n)]
            + [m for m in ("cross_gamma", "d_pair_corr") for _ in pairs] + ["rho", "theta"])
    failures, zs = [], []
    if sorted(rows.measure) != sorted(want):
        return [f"{case.trade_id}: measures {sorted(rows.measure)} != {sorted(want)}"], zs
    scale = _scales(case)
    for row in rows.itertuples():
        m = row.measure
        k = names.index(row.underlying) if row.underlying in names else -1
        l = names.index(row.underlying_2) if row.underlying_2 in names else -1
        if m in ("price", "rho", "theta"):
            # not per name: labelled by the trade's names in name order (risk.risk_label)
            label_ok = row.underlying == ";".join(sorted(names)) and row.underlying_2 == ""
            expected = ref[m]
        elif m in ("delta", "gamma", "vega"):
            label_ok = k >= 0 and row.underlying_2 == ""
            expected = ref[m][k]
        else:
            label_ok = k >= 0 and l >= 0 and row.underlying < row.underlying_2
            expected = ref[m][pairs.index((min(k, l), max(k, l)))]
        size = scale[m](k, l)
        z = (row.value - expected) / row.se if row.se > 0 else np.inf
        zs.append(z)
        want_method = "" if m == "price" else (
            EXPECTED_SINGLE[method] if single else EXPECTED_METHOD[method][m])
        # 1e-12 of the size: roundoff, where every path gives the same value (the exchange
        # option's rho is 0 path by path, so its SE is 0 or ~1e-14)
        if (not label_ok or row.method != want_method
                or abs(row.value - expected) > 4 * row.se + 1e-12 * size
                or 4 * row.se > MEANINGFUL * size):
            failures.append(f"{method} {case.trade_id} {m} {row.underlying} {row.underlying_2} "
                            f"[{row.method}]: mc={row.value:.6g} ref={expected:.6g} "
                            f"se={row.se:.3g} z={z:.2f} 4se/size={4 * row.se / size:.3f}")
    return failures, zs


# -- the books: one per estimator, each pricing many trades on one seed ----------------------

QUICK = STULZ + SPREADS + BASKETS + EUROPEANS
Book = namedtuple("Book", "method cases n_paths seed")
#: Paths per book: the fewest (powers of two) for which 4 SE stays under MEANINGFUL of every
#: measure's size on every seed tried (worst 4 SE/size 0.034-0.041; lr's second-order scores are
#: the noisiest; the 5-asset basket's lr gammas need 2^25: the score of a small leg, E with
#: w = -0.6 and σ = 0.15, multiplies the payoff of the whole basket).
BOOKS = {"auto": Book("auto", QUICK + [BASKET5, BIG_BASKET], 1 << 19, SEED),
         "lr": Book("lr", QUICK, 1 << 21, SEED + 1),
         "fd": Book("fd", QUICK, 1 << 18, SEED + 2),
         "lr_slow": Book("lr", [BASKET5], 1 << 25, SEED + 3)}
SLOW_BOOKS = ("lr_slow",)


@pytest.fixture(scope="module")
def runs():
    """(results, risk) of a book, priced on first use."""
    cache = {}

    def run(name):
        if name not in cache:
            book = BOOKS[name]      # lr and fd trade no N name: their group is untraded
            cache[name] = price_portfolio(_book(book.cases), MARKET, correlations=CORRELATIONS,
                                          n_paths=book.n_paths, seed=book.seed,
                                          method=book.method, risk=True)
        return cache[name]
    return run


def _params(cases):
    """(book, case) for each case and each book holding it; the slow books' marked slow."""
    return [pytest.param(name, case, id=f"{case.trade_id}-{name}",
                         marks=[pytest.mark.slow] if name in SLOW_BOOKS else [])
            for case in cases for name, book in BOOKS.items() if case in book.cases]


def _check(runs, name, case):
    method = BOOKS[name].method
    _, risk = runs(name)
    failures, _ = _compare(case, risk[risk.trade_id == case.trade_id], _reference(case, method),
                           method)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name, case", _params(STULZ))
def test_best_and_worst_of_against_stulz(runs, name, case):
    _check(runs, name, case)


@pytest.mark.parametrize("name, case", _params(SPREADS))
def test_spread_against_margrabe_and_quadrature(runs, name, case):
    _check(runs, name, case)


@pytest.mark.parametrize("name, case", _params(BASKETS + [BASKET5]))
def test_basket_against_quadrature(runs, name, case):
    _check(runs, name, case)


@pytest.mark.parametrize("name, case", _params(EUROPEANS))
def test_european_on_a_correlated_name_against_black_scholes(runs, name, case):
    """A single-asset trade priced on its group's correlated paths (every book holds a basket
    or best/worst-of on its name) is still Black–Scholes; its risk rows equal its wide
    columns (spec §9)."""
    _check(runs, name, case)
    results, risk = runs(name)
    rows = risk[risk.trade_id == case.trade_id].set_index("measure")
    for m in ("price", "delta", "gamma", "vega", "rho", "theta"):
        assert rows.at[m, "value"] == results.at[case.trade_id, m]
        assert rows.at[m, "se"] == results.at[case.trade_id, m + "_se"]


# -- ten assets against a plain NumPy Monte Carlo --------------------------------------------------

def _numpy_basket(case, n_paths, seed):
    """Price and pathwise deltas (with SEs) of a basket call by a plain NumPy Monte Carlo: its own
    generator (default_rng), Cholesky factor (numpy.linalg) and exact terminal GBM law;
    delta_k = e^{-rT} 1{B > K} w_k S_k(T) / S_k(0), B = Σ w_k S_k(T) (Glasserman 2004, §7.2)."""
    assert case.option_type == "call"
    names, s, v, q, w, c = _legs(case)
    t = case.maturity
    y = np.random.default_rng(seed).standard_normal((n_paths, len(s))) @ np.linalg.cholesky(c).T
    s_t = s * np.exp((RATE - q - 0.5 * v * v) * t + v * np.sqrt(t) * y)
    basket = s_t @ w
    disc = np.exp(-RATE * t)
    samples = np.column_stack([disc * np.maximum(basket - case.strike, 0.0),
                               disc * (basket > case.strike)[:, None] * w * s_t / s])
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(n_paths)


def test_ten_asset_basket_against_numpy_monte_carlo(runs):
    """Price and the ten deltas within 4 combined SEs (two independent estimates:
    se² = se_mcgreeks² + se_numpy²), each combined 4 SE under MEANINGFUL of its size."""
    _, risk = runs("auto")
    rows = risk[risk.trade_id == BIG_BASKET.trade_id]
    names = BIG_BASKET.underlying.split(";")
    ours = [rows[rows.measure == "price"].iloc[0]] + [
        rows[(rows.measure == "delta") & (rows.underlying == n)].iloc[0] for n in names]
    mean, se = _numpy_basket(BIG_BASKET, 1 << 18, seed=20240519)
    scale = _scales(BIG_BASKET)
    sizes = [scale["price"](0, 0)] + [scale["delta"](k, 0) for k in range(len(names))]
    failures = []
    for row, ref, ref_se, size in zip(ours, mean, se, sizes):
        both = np.hypot(row.se, ref_se)
        if abs(row.value - ref) > 4 * both or 4 * both > MEANINGFUL * size:
            failures.append(f"{row.measure} {row.underlying}: mc={row.value:.6g} "
                            f"numpy={ref:.6g} se={both:.3g} z={(row.value - ref) / both:.2f}")
    assert not failures, "\n".join(failures)


# -- seed study: are the standard errors honest? ---------------------------------------------------

STUDY_SEEDS = 400
STUDY_PATHS = 1 << 13
STUDY_CASE = Case("study", "basket", "call", "A;B", None, 190.0, 1.0)


@pytest.mark.slow
def test_seed_study_z_scores_are_standard_normal():
    """Over STUDY_SEEDS seeds of STUDY_PATHS paths, z = (mc - exact)/se of the lr gammas and
    cross-gamma and of the pathwise d_pair_corr of a 2-asset basket should be N(0, 1) if the
    estimators are unbiased and their SEs honest.  With N seeds, under that hypothesis the mean
    of z is N(0, 1/N) and (N - 1) s² ~ χ²(N - 1), s the sample standard deviation (e.g.
    Casella & Berger, Statistical Inference, 2nd ed., Thm 5.3.1); each is checked at its
    two-sided 4-sigma level (probability 6.3e-5): |mean| <= 4/√N = 0.2, s in [0.86, 1.14].
    (z is a t statistic: a skewed per-path estimate shifts its mean by about -γ/(2√n), Johnson,
    JASA 73 (1978) 536.  The lr gammas' per-path skewness is 10.5 and 13.0 here (NumPy, 4e6
    paths), so -0.06 and -0.07 at n = 2^13, a third of the tolerance; hence not fewer paths.)
    lr's d_pair_corr is the lr cross-gamma times S_k S_l σ_k σ_l T path by path (both scores
    are ζ_k ζ_l - (C⁻¹)_kl), so it is covered by it."""
    market = MARKET[MARKET.underlying.isin(["A", "B"])]
    corr = CORRELATIONS[(CORRELATIONS.underlying_1 == "A") & (CORRELATIONS.underlying_2 == "B")]
    book = _book([STUDY_CASE])
    ref = _reference(STUDY_CASE, "auto")
    wanted = {("lr", "gamma", "A"), ("lr", "gamma", "B"), ("lr", "cross_gamma", "A"),
              ("auto", "d_pair_corr", "A")}
    z = {key: [] for key in wanted}
    for seed in range(STUDY_SEEDS):
        for method in ("lr", "auto"):
            _, risk = price_portfolio(book, market, correlations=corr, n_paths=STUDY_PATHS,
                                      seed=1000 + seed, method=method, risk=True)
            for row in risk.itertuples():
                key = (method, row.measure, row.underlying)
                if key in wanted:       # a pair's measure: pair 0; else the leg's
                    i = 0 if row.underlying_2 else "AB".index(row.underlying)
                    z[key].append((row.value - ref[row.measure][i]) / row.se)
    n = STUDY_SEEDS
    alpha = 2 * stats.norm.sf(4.0)
    s_low, s_high = np.sqrt(stats.chi2.ppf([alpha / 2, 1 - alpha / 2], n - 1) / (n - 1))
    failures = []
    for key, values in z.items():
        values = np.array(values)
        assert values.size == n, key
        mean, sd = values.mean(), values.std(ddof=1)
        if abs(mean) > 4 / np.sqrt(n) or not s_low <= sd <= s_high:
            failures.append(f"{key}: mean z {mean:.3f} (|.| <= {4 / np.sqrt(n):.3f}), "
                            f"sd z {sd:.3f} (in [{s_low:.3f}, {s_high:.3f}])")
    assert not failures, "\n".join(failures)
