"""The peers mcgreeks is measured against, used the way their users use them.

QuantLib (``QuantLib`` on PyPI): ``MCEuropeanEngine``, ``MCDiscreteArithmeticAPEngine`` and
``MCEuropeanHestonEngine`` with pseudorandom numbers (Mersenne twister, inverse-cumulative
normals) and a fixed seed.  QuantLib's Monte Carlo engines give a price and its error estimate,
no Greeks, so Greeks are central bump-and-revalue: the market is built on quotes, a bump moves a
quote (or, for Heston parameters, rebuilds the process, as the process takes them by value) and
the option is repriced with the same seed, so both sides of a bump use the same random numbers.
QuantLib gives no error estimate for such a difference, so the paths are split into ``batches``
independent batches (seeds ``seed + b``) and each Greek's standard error is the spread of its
batch estimates (batch means).  Bumps: spot ±1 %, volatility ±1 % of σ, rate ±10 bp (as
mcgreeks' ``fd``), Heston v0, κ, v̄, ξ ±1 % and ρ ±0.01.  Theta = -∂V/∂T:
- Heston: move the evaluation date ±1 day (QuantLib's dates are whole days) and take
  (V(today+1d) - V(today-1d)) / 2d; the engine keeps its number of time steps, so the bumped
  runs use the same random numbers.
- GBM: that date move breaks common random numbers for the daily-fixing Asian (a fixing falls on
  the new evaluation date, the path loses a dimension and every normal shifts by one date: the
  theta SE grows about 100-fold).  So the maturity is scaled through the quotes instead, T(1±1 %)
  being, under GBM, the same law as (r, q, σ) → ((1±h) r, (1±h) q, √(1±h) σ) on the same dates.
  That is mcgreeks' theta (the fixing schedule scales with T), at the same cost of two runs.

Dates: day counter Actual/365 Fixed, valuation on 2026-01-05, so a maturity of ``days`` calendar
days is ``days/365`` years and the Asian fixes every day: t_i = i/365 = i·T/n exactly.

FinancePy (``financepy`` on PyPI, optional): its parallel numba kernel for a European under
Black–Scholes (``value_mc_numba_parallel``, antithetic), price only.  FinancePy pins older numba
and NumPy releases than mcgreeks uses; install it without them (``pip install --no-deps
financepy``, or into a separate directory on ``PYTHONPATH``) so both run in one process.  Its
first import compiles its kernels for about a minute on a cold cache.
"""
import math
import time

import numpy as np

try:
    import QuantLib as ql
except ImportError:          # pragma: no cover - QuantLib is a test dependency of mcgreeks
    ql = None

TODAY = (5, 1, 2026)
GBM_QUANTITIES = ("price", "delta", "gamma", "vega", "rho", "theta")
HESTON_QUANTITIES = ("price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar",
                     "d_xi", "d_corr")
#: Relative bump sizes (absolute for rate and corr; days for time).
BUMPS = {"spot": 0.01, "vol": 0.01, "rate": 0.001, "days": 1, "maturity": 0.01, "v0": 0.01, "kappa": 0.01,
         "vbar": 0.01, "xi": 0.01, "corr": 0.01}


def available():
    """(True, version) when QuantLib imports, else (False, why)."""
    if ql is None:
        return False, "QuantLib is not installed (pip install QuantLib)"
    return True, ql.__version__


class _Market:
    """Quotes and term structures that follow the evaluation date (settlement days 0)."""

    def __init__(self, *, spot, rate, div_yield, vol=None):
        self.calendar = ql.NullCalendar()
        self.day_counter = ql.Actual365Fixed()
        self.today = ql.Date(*TODAY)
        ql.Settings.instance().evaluationDate = self.today
        self.spot = ql.SimpleQuote(spot)
        self.rate = ql.SimpleQuote(rate)
        self.div = ql.SimpleQuote(div_yield)
        self.risk_free = ql.YieldTermStructureHandle(
            ql.FlatForward(0, self.calendar, ql.QuoteHandle(self.rate), self.day_counter))
        self.dividends = ql.YieldTermStructureHandle(
            ql.FlatForward(0, self.calendar, ql.QuoteHandle(self.div), self.day_counter))
        if vol is not None:
            self.vol = ql.SimpleQuote(vol)
            self.vol_ts = ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(0, self.calendar, ql.QuoteHandle(self.vol), self.day_counter))
            self.process = ql.BlackScholesMertonProcess(ql.QuoteHandle(self.spot), self.dividends,
                                                        self.risk_free, self.vol_ts)

    def shift_days(self, days):
        ql.Settings.instance().evaluationDate = self.today + days

    def restore(self):
        ql.Settings.instance().evaluationDate = self.today


def _option(market, *, payoff, strike, days, is_call, n_fixings):
    kind = ql.Option.Call if is_call else ql.Option.Put
    vanilla = ql.PlainVanillaPayoff(kind, strike)
    exercise = ql.EuropeanExercise(market.today + days)
    if payoff == "european":
        return ql.VanillaOption(vanilla, exercise)
    if payoff != "asian_arithmetic":
        raise ValueError(f"payoff has value {payoff!r}: QuantLib peer prices european and "
                         "asian_arithmetic")
    if days % n_fixings:
        raise ValueError(f"n_fixings has value {n_fixings}: must divide days ({days}) so the "
                         "fixings fall on whole days")
    step = days // n_fixings
    fixings = [market.today + step * i for i in range(1, n_fixings + 1)]
    return ql.DiscreteAveragingAsianOption(ql.Average.Arithmetic, fixings, vanilla, exercise)


def _gbm_engine(market, payoff, n_paths, seed, control_variate):
    if payoff == "european":
        # One step is exact: QuantLib's Black-Scholes process evolves log-normally.
        return ql.MCEuropeanEngine(market.process, "pseudorandom", timeSteps=1,
                                   requiredSamples=n_paths, seed=seed)
    return ql.MCDiscreteArithmeticAPEngine(market.process, "pseudorandom",
                                           controlVariate=control_variate,
                                           requiredSamples=n_paths, seed=seed)


def _central(reprice, quote, h):
    base = quote.value()
    quote.setValue(base + h)
    up = reprice()
    quote.setValue(base - h)
    down = reprice()
    quote.setValue(base)
    return up, down


def _time_bump(market, reprice, days):
    market.shift_days(days)
    later = reprice()
    market.shift_days(-days)
    earlier = reprice()
    market.restore()
    return (later - earlier) / (2.0 * days / 365.0)


def _maturity_scaling(market, reprice, maturity, h):
    """-∂V/∂T with every date scaling with T, by moving quotes: under GBM, dates c·t_i with
    (r, q, σ) have the law of dates t_i with (c·r, c·q, √c·σ), discount included."""
    rate, div, vol = market.rate.value(), market.div.value(), market.vol.value()
    values = []
    for c in (1.0 + h, 1.0 - h):
        market.rate.setValue(rate * c)
        market.div.setValue(div * c)
        market.vol.setValue(vol * math.sqrt(c))
        values.append(reprice())
    market.rate.setValue(rate)
    market.div.setValue(div)
    market.vol.setValue(vol)
    return -(values[0] - values[1]) / (2.0 * h * maturity)


def _batch_stats(batches, price_errors, quantities):
    """Mean of the batch estimates and its standard error; the price SE from QuantLib's own
    per-batch error estimates."""
    values = np.array(batches)
    k = values.shape[0]
    out = {}
    for i, q in enumerate(quantities):
        out[q] = float(values[:, i].mean())
        out[q + "_se"] = float(values[:, i].std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    out["price_se"] = float(math.sqrt(np.sum(np.square(price_errors))) / k)
    return out


def gbm(*, payoff, spot, strike, days, rate, vol, div_yield=0.0, is_call=True, n_fixings=1,
        n_paths, seed=42, greeks=True, batches=16, control_variate=False):
    """QuantLib Monte Carlo price (and bump-and-revalue Greeks) of a European or arithmetic Asian.

    Maturity ``days`` calendar days (T = days/365 years); an Asian fixes every days/n_fixings
    days.  ``n_paths`` are split into ``batches`` equal batches (seeds seed, seed+1, ...).
    ``control_variate``: the Asian engine's own option (the geometric average on the same path,
    its analytic price as the control, coefficient 1), applied to every bumped run too.

    Returns:
      dict with ``price`` (and ``delta, gamma, vega, rho, theta`` when ``greeks``), each with
      ``<name>_se``; ``n_paths``; ``pricings`` (the number of QuantLib MC runs); ``seconds``.
    """
    market = _Market(spot=spot, rate=rate, div_yield=div_yield, vol=vol)
    option = _option(market, payoff=payoff, strike=strike, days=days, is_call=is_call,
                     n_fixings=n_fixings)
    per_batch = n_paths // batches
    rows, errors, pricings = [], [], 0
    start = time.perf_counter()
    for b in range(batches):
        option.setPricingEngine(_gbm_engine(market, payoff, per_batch, seed + b,
                                            control_variate))
        price = option.NPV()
        errors.append(option.errorEstimate())
        pricings += 1
        if not greeks:
            rows.append([price])
            continue
        h_s = BUMPS["spot"] * spot
        up, down = _central(option.NPV, market.spot, h_s)
        delta, gamma = (up - down) / (2 * h_s), (up - 2 * price + down) / (h_s * h_s)
        h_v = BUMPS["vol"] * vol
        up, down = _central(option.NPV, market.vol, h_v)
        vega = (up - down) / (2 * h_v)
        h_r = BUMPS["rate"]
        up, down = _central(option.NPV, market.rate, h_r)
        rho = (up - down) / (2 * h_r)
        theta = _maturity_scaling(market, option.NPV, days / 365.0, BUMPS["maturity"])
        pricings += 8
        rows.append([price, delta, gamma, vega, rho, theta])
    seconds = time.perf_counter() - start
    out = _batch_stats(rows, errors, GBM_QUANTITIES if greeks else ("price",))
    out.update(n_paths=per_batch * batches, pricings=pricings, seconds=seconds)
    return out


def _heston_process(market, p):
    return ql.HestonProcess(market.risk_free, market.dividends, ql.QuoteHandle(market.spot),
                            p["v0"], p["kappa"], p["vbar"], p["xi"], p["corr"])


def heston(*, spot, strike, days, rate, div_yield=0.0, v0, kappa, vbar, xi, corr, is_call=True,
           n_steps=252, n_paths, seed=42, greeks=True, batches=16):
    """QuantLib ``MCEuropeanHestonEngine`` price (and bump-and-revalue Greeks) of a European.

    ``n_steps`` time steps (QuantLib's default scheme, quadratic-exponential with martingale
    correction).  Heston parameters are bumped by rebuilding the process and engine.

    Returns:
      dict with ``price`` (and ``delta, gamma, rho, theta, d_v0, d_kappa, d_vbar, d_xi,
      d_corr`` when ``greeks``), each with ``<name>_se``; ``n_paths``; ``pricings``;
      ``seconds``.
    """
    market = _Market(spot=spot, rate=rate, div_yield=div_yield)
    kind = ql.Option.Call if is_call else ql.Option.Put
    option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, strike),
                              ql.EuropeanExercise(market.today + days))
    params = dict(v0=v0, kappa=kappa, vbar=vbar, xi=xi, corr=corr)
    per_batch = n_paths // batches

    def engine(p, s):
        return ql.MCEuropeanHestonEngine(_heston_process(market, p), "pseudorandom",
                                         timeSteps=n_steps, requiredSamples=per_batch, seed=s)

    rows, errors, pricings = [], [], 0
    start = time.perf_counter()
    for b in range(batches):
        option.setPricingEngine(engine(params, seed + b))
        price = option.NPV()
        errors.append(option.errorEstimate())
        pricings += 1
        if not greeks:
            rows.append([price])
            continue
        h_s = BUMPS["spot"] * spot
        up, down = _central(option.NPV, market.spot, h_s)
        delta, gamma = (up - down) / (2 * h_s), (up - 2 * price + down) / (h_s * h_s)
        h_r = BUMPS["rate"]
        up, down = _central(option.NPV, market.rate, h_r)
        rho = (up - down) / (2 * h_r)
        theta = _time_bump(market, option.NPV, BUMPS["days"])
        row = [price, delta, gamma, rho, theta]
        pricings += 6
        for name in ("v0", "kappa", "vbar", "xi", "corr"):
            h = BUMPS[name] if name == "corr" else BUMPS[name] * params[name]
            values = []
            for sign in (1.0, -1.0):
                bumped = dict(params, **{name: params[name] + sign * h})
                option.setPricingEngine(engine(bumped, seed + b))
                values.append(option.NPV())
            row.append((values[0] - values[1]) / (2 * h))
            pricings += 2
        rows.append(row)
    seconds = time.perf_counter() - start
    out = _batch_stats(rows, errors, HESTON_QUANTITIES if greeks else ("price",))
    out.update(n_paths=per_batch * batches, pricings=pricings, seconds=seconds)
    return out


def heston_analytic_price(*, spot, strike, days, rate, div_yield=0.0, v0, kappa, vbar, xi, corr,
                          is_call=True):
    """QuantLib's ``AnalyticHestonEngine`` price (a cross-check of the MC peers)."""
    market = _Market(spot=spot, rate=rate, div_yield=div_yield)
    kind = ql.Option.Call if is_call else ql.Option.Put
    option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, strike),
                              ql.EuropeanExercise(market.today + days))
    model = ql.HestonModel(_heston_process(market, dict(v0=v0, kappa=kappa, vbar=vbar, xi=xi,
                                                        corr=corr)))
    option.setPricingEngine(ql.AnalyticHestonEngine(model))
    return option.NPV()


# -- FinancePy ------------------------------------------------------------------------------------

def financepy_kernel():
    """FinancePy's parallel numba European kernel, or (None, why) when it cannot be imported."""
    try:
        from financepy.models.black_scholes_mc import value_mc_numba_parallel
        from financepy.utils.global_types import OptionTypes
    except Exception as exc:     # not installed, or incompatible with this numba
        return None, f"FinancePy is not available ({type(exc).__name__}: {exc}); " \
                     "pip install --no-deps financepy"
    return (value_mc_numba_parallel, OptionTypes), None


def financepy_european(kernel, *, spot, strike, maturity, rate, vol, div_yield=0.0,
                       is_call=True, n_paths, seed=42):
    """FinancePy ``value_mc_numba_parallel``: price only, ``n_paths`` antithetic pairs (so
    2·n_paths payoffs from n_paths normals), NumPy's legacy RNG inside numba (serial)."""
    func, types = kernel
    kind = (types.EUROPEAN_CALL if is_call else types.EUROPEAN_PUT).value
    return func(float(spot), float(maturity), float(strike), float(rate), float(div_yield),
                float(vol), int(kind), int(n_paths), int(seed), 0)
