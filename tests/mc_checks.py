"""The Monte Carlo acceptance check shared by the estimator and pricer tests, and the one-thread
switch the reproducibility tests use (test support)."""
import contextlib

import numba
import numpy as np
import pandas as pd
import scipy.stats

#: 4 SE must be under this fraction of a Greek's natural size for a comparison to count.
MEANINGFUL = 0.05


def assert_within_4se(result, reference, scale, greeks, method):
    """Each quantity in ``greeks`` within 4 SE of ``reference`` (plus 1e-12 of its scale, for
    roundoff where every path pays the same), with 4 SE under MEANINGFUL of its natural ``scale``
    so the comparison means something; and, if ``method`` is given, estimated by it."""
    failures = []
    for g in greeks:
        se = result[g + "_se"]
        bad = (result[g] - reference[g]).abs() > 4 * se + 1e-12 * scale[g]
        loose = 4 * se > MEANINGFUL * scale[g]
        for tid in result.index[bad | loose]:
            failures.append(f"{method} {g} {tid}: mc={result.at[tid, g]:.6g} "
                            f"ref={reference.at[tid, g]:.6g} se={se[tid]:.3g} "
                            f"scale={scale.at[tid, g]:.3g}")
        if g != "price" and method:
            assert (result["method_" + g] == method).all(), (g, method)
    assert not failures, "\n".join(failures)


def assert_estimates_agree(z):
    """z-scores of many independent comparisons (estimate a - estimate b over their combined SE):
    calibrated (mean within 4 of its SEs of 0, standard deviation within 0.75-1.25) and none
    beyond the larger of 4 and the bound a normal z exceeds with probability 1e-3 / n (the
    Sidak-Bonferroni bound: a test of n ~ 400 comparisons at 4 SE each fails by chance about once
    in 40 runs; at this bound once in 1,000).  A single comparison keeps the 4 SE standard."""
    z = np.asarray(z, dtype=float).ravel()
    limit = max(4.0, scipy.stats.norm.isf(1e-3 / (2 * z.size)))
    assert abs(z.mean()) < 4 / np.sqrt(z.size), ("mean", z.mean())
    assert 0.75 < z.std() < 1.25, ("std", z.std())
    assert np.abs(z).max() <= limit, ("max |z|", np.abs(z).max(), limit)


def natural_scale(p):
    """Vanilla-sized scales of (price, Greeks) per row of ``p`` (columns spot, vol, maturity):
    with sd = σ√T, (S, 1, 1/(S sd), S√T, S T, S σ/√T) for price, delta, gamma, vega, rho,
    theta."""
    sd = p.vol * np.sqrt(p.maturity)
    return pd.DataFrame({"price": p.spot, "delta": 1.0 + 0 * p.spot, "gamma": 1 / (p.spot * sd),
                         "vega": p.spot * np.sqrt(p.maturity), "rho": p.spot * p.maturity,
                         "theta": p.spot * p.vol / np.sqrt(p.maturity)}).set_index(p.index)


def closed_forms(trades, market):
    """Black-Scholes closed forms (price and Greeks, one row per trade_id) of each trade of a
    GBM book whose payoffs are european, asian_geometric or digital (``mcgreeks.analytic``,
    checked against QuantLib in tests/analytic)."""
    from mcgreeks.analytic import asian, black_scholes as bs
    p = trades.merge(market, on="underlying").set_index("trade_id")
    out = {}
    for tid, r in p.iterrows():
        args = dict(spot=r.spot, strike=r.strike, maturity=r.maturity, rate=r.rate, vol=r.vol,
                    div_yield=r.div_yield, is_call=r.option_type == "call")
        if r.payoff == "european":
            out[tid] = bs.european(**args)
        elif r.payoff == "asian_geometric":
            out[tid] = asian.geometric_asian(**args, n_fixings=int(r.n_fixings))
        else:
            out[tid] = bs.digital(**args, cash=r.cash)
    return pd.DataFrame(out).T


def assert_same_bits_across_threads_and_chunks(trades, market, **options):
    """``price_portfolio(trades, market, **options)`` gives the same bits in every numeric
    column on one thread as on two, and with the paths cut into segment-sized chunks and
    3-tile blocks."""
    from mcgreeks import engine, price_portfolio

    def numbers(table):
        return table.select_dtypes("number").to_numpy()

    reference = price_portfolio(trades, market, **options)
    with one_thread():
        single = price_portfolio(trades, market, **options)
    chunked = price_portfolio(trades, market, **options, chunk_paths=engine.SEGMENT,
                              block_paths=3 * engine.TILE)
    for other in (single, chunked):
        np.testing.assert_array_equal(numbers(other), numbers(reference))


@contextlib.contextmanager
def one_thread():
    """numba runs on one thread inside the block; the reproducibility tests compare that with
    the default two (and need them)."""
    assert numba.config.NUMBA_NUM_THREADS >= 2, "the thread test needs two threads"
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(saved)
