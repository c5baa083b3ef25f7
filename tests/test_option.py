"""price_option: one option by keyword arguments, against Black–Scholes–Merton closed forms."""
import pytest

from mcgreeks import InputError, OptionResult, price_option, price_portfolio
from mcgreeks.analytic.black_scholes import digital, european

import pandas as pd

GBM = dict(spot=100.0, rate=0.03, div_yield=0.01, vol=0.25)


@pytest.mark.parametrize("payoff,option_type,strike,closed", [
    ("european", "call", 105.0, european), ("european", "put", 95.0, european),
    ("digital", "call", 100.0, digital)])
def test_price_and_greeks_agree_with_black_scholes(payoff, option_type, strike, closed):
    """Every measure within 4 SE of the closed form (ref: mcgreeks.analytic.black_scholes, itself
    tested against QuantLib), with SEs small enough (< 1 % of the value) to mean something."""
    result = price_option(payoff, option_type, strike=strike, maturity=1.5, n_paths=200_000,
                          seed=21, **GBM)
    exact = closed(strike=strike, maturity=1.5, is_call=option_type == "call", **GBM)
    assert isinstance(result, OptionResult)
    assert list(result.table.index) == ["price", "delta", "gamma", "vega", "rho", "theta"]
    for q in result.table.index:
        value, se = result[q]
        assert se < 0.01 * abs(exact[q]), q
        assert abs(value - exact[q]) < 4 * se, (q, value, exact[q], se)


def test_same_numbers_as_the_portfolio_call_and_a_printable_result():
    result = price_option("european", "call", strike=100.0, maturity=1.0, quantity=3,
                          greeks="delta,rho", n_paths=8192, seed=4, **GBM)
    # the random stream is keyed by the seed and the underlying's name, "underlying" here
    trades = pd.DataFrame([dict(trade_id="t", underlying="underlying", payoff="european",
                                option_type="call", strike=100.0, maturity=1.0, quantity=3)])
    market = pd.DataFrame([dict(underlying="underlying", model="gbm", **GBM)])
    book = price_portfolio(trades, market, n_paths=8192, seed=4, greeks="delta,rho")
    for q in ("price", "delta", "rho"):
        assert result.value(q) == book.at["t", q] and result.se(q) == book.at["t", q + "_se"]
    assert result.method("delta") == book.at["t", "method_delta"]
    text = str(result)
    assert text.splitlines()[0].startswith("european call, K=100, T=1 under gbm")
    assert "delta" in text and "±" in text and "gamma" not in text


def test_heston_option_has_the_model_sensitivities():
    result = price_option("european", "put", spot=100.0, strike=100.0, maturity=0.5, rate=0.02,
                          v0=0.04, kappa=2.0, vbar=0.04, xi=0.3, corr=-0.5, n_paths=4096,
                          steps_per_year=12, greeks="delta,d_v0,d_corr")
    assert list(result.table.index) == ["price", "delta", "d_v0", "d_corr"]


def test_bad_keywords_are_clear_errors():
    with pytest.raises(InputError, match="column 'strike' has value -1"):
        price_option(strike=-1.0, maturity=1.0, **GBM)
    with pytest.raises(InputError, match="Heston parameters"):
        price_option(strike=100.0, maturity=1.0, xi=0.3, **GBM)
    with pytest.raises(InputError, match="'gamma2'.*valid"):
        price_option(strike=100.0, maturity=1.0, greeks=["gamma2"], **GBM)
