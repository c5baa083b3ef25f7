"""``models.heston.moment_explosion_time`` against an independent method: the Riccati equation
of the moment (Andersen & Piterbarg 2007, eq. 3.3) integrated numerically until it blows up."""
import math

import pytest
from scipy.integrate import solve_ivp

from mcgreeks.models.heston import moment_explosion_time


def blow_up_time(params, omega, horizon=60.0):
    """When B of E[S_T^omega] = exp(A + B v0) passes 1e9 (B' = xi^2/2 B^2 + (corr xi omega -
    kappa) B + omega (omega - 1)/2, B(0) = 0), by an adaptive Runge-Kutta; inf if not by
    ``horizon``.  From 1e9 to infinity takes 2 / (xi^2 1e9) years more, below the tolerance."""
    a = 0.5 * params["xi"] ** 2
    b = params["corr"] * params["xi"] * omega - params["kappa"]
    c = 0.5 * omega * (omega - 1.0)

    def passed(t, y):
        return y[0] - 1e9
    passed.terminal = True
    solution = solve_ivp(lambda t, y: [a * y[0] ** 2 + b * y[0] + c], (0.0, horizon), [0.0],
                         events=passed, rtol=1e-11, atol=1e-12, method="LSODA")
    return solution.t_events[0][0] if solution.t_events[0].size else math.inf


CASES = {
    # D < 0 (b > 0 and b < 0): B is a shifted tangent
    "positive corr": dict(kappa=1.0, xi=1.0, corr=0.5),
    "zero corr, large xi": dict(kappa=1.0, xi=1.0, corr=0.0),
    "negative corr, large xi": dict(kappa=0.5, xi=1.5, corr=-0.2),
    # D > 0 with b > 0: a logarithm
    "slow reversion, corr near 1": dict(kappa=0.1, xi=0.8, corr=0.95),
    # D >= 0 with b < 0: finite forever (the README's sample underlyings)
    "HSTN": dict(kappa=2.0, xi=0.6, corr=-0.65),
    "FXVL": dict(kappa=0.8, xi=0.9, corr=-0.3),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("omega", [2.0, 3.0])
def test_the_explosion_time_is_where_the_riccati_equation_blows_up(name, omega):
    params = CASES[name]
    expected = blow_up_time(params, omega)
    got = moment_explosion_time(params, omega)
    if math.isinf(expected):
        assert math.isinf(got)
    else:
        assert got == pytest.approx(expected, rel=1e-6)


def test_the_cases_cover_every_branch():
    """Each formula is met: the tangent (D < 0), the logarithm (D > 0, b > 0), no explosion."""
    def branch(p, omega=2.0):
        a, b, c = 0.5 * p["xi"] ** 2, p["corr"] * p["xi"] * omega - p["kappa"], 1.0
        d = b * b - 4 * a * c
        return "tangent" if d < 0 else ("log" if b > 0 else "finite")
    assert {branch(p) for p in CASES.values()} == {"tangent", "log", "finite"}


def test_moments_up_to_the_first_are_never_infinite():
    p = CASES["positive corr"]
    assert math.isinf(moment_explosion_time(p, 1.0))
    assert math.isinf(moment_explosion_time(p, 0.5))
    assert math.isinf(moment_explosion_time(p, 0.0))
