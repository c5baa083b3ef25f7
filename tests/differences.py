"""Richardson-extrapolated finite differences of closed-form prices: the independent check that
a closed form's Greeks are the derivatives of its own price (test support, not a test)."""
import numpy as np


def central(price, kwargs, name, step):
    """∂price/∂name by central differences at h and h/2, Richardson-extrapolated (error O(h⁴))."""

    def diff(h):
        up = dict(kwargs, **{name: kwargs[name] + h})
        down = dict(kwargs, **{name: kwargs[name] - h})
        return (price(**up) - price(**down)) / (2.0 * h)

    return (4.0 * diff(step / 2.0) - diff(step)) / 3.0


def second(price, kwargs, name, step):
    """∂²price/∂name² likewise."""

    def diff(h):
        up = dict(kwargs, **{name: kwargs[name] + h})
        down = dict(kwargs, **{name: kwargs[name] - h})
        return (price(**up) - 2.0 * price(**kwargs) + price(**down)) / h**2

    return (4.0 * diff(step / 2.0) - diff(step)) / 3.0


def greeks(func, kwargs):
    """delta, gamma, vega, rho, theta of ``func(**kwargs)["price"]`` by Richardson differences,
    with steps scaled to the terminal spot standard deviation (theta = -∂/∂T, the whole fixing
    schedule moving with T)."""

    def price(**kw):
        return func(**kw)["price"]

    ds = kwargs["spot"] * kwargs["vol"] * np.sqrt(kwargs["maturity"])
    return {"delta": central(price, kwargs, "spot", 1e-3 * ds),
            "gamma": second(price, kwargs, "spot", 2e-2 * ds),
            "vega": central(price, kwargs, "vol", 1e-4 * kwargs["vol"]),
            "rho": central(price, kwargs, "rate", 1e-4),
            "theta": -central(price, kwargs, "maturity", 1e-3 * kwargs["maturity"])}


def assert_greeks(func, kwargs, rtol=1e-6, atol=1e-8):
    """Every Greek of the closed form ``func`` equals the Richardson difference of its price."""
    exact = func(**kwargs)
    for name, value in greeks(func, kwargs).items():
        np.testing.assert_allclose(exact[name], value, rtol=rtol, atol=atol, err_msg=name)
