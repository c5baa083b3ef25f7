"""Input checks, normal density/distribution and result packaging shared by the closed forms."""

import numpy as np
from scipy import special

from mcgreeks import elementary

GREEKS = ("price", "delta", "gamma", "vega", "rho", "theta")

_LOG_SQRT_2PI = 0.9189385332046728    # ln sqrt(2 pi), correctly rounded (not libm's)




def _norm_cdf(x):
    return special.ndtr(x)


def _norm_pdf(x):
    return elementary.exp(-0.5 * x * x - _LOG_SQRT_2PI)


def _first_bad(arr, bad):
    return np.asarray(arr)[np.asarray(bad)].ravel()[0].item()


def _positive(name, value):
    """``value`` as a float array; ValueError naming ``name`` unless every entry is > 0 and finite."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    bad = ~(np.isfinite(arr) & (arr > 0.0))
    if np.any(bad):
        raise ValueError(f"{name} must be positive and finite, got {_first_bad(arr, bad)!r}")
    return arr


def _finite(name, value):
    """``value`` as a float array; ValueError naming ``name`` if any entry is NaN or infinite."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    bad = ~np.isfinite(arr)
    if np.any(bad):
        raise ValueError(f"{name} must be finite, got {_first_bad(arr, bad)!r}")
    return arr


def _flag(name, value):
    """``value`` as a bool array.

    Only genuine booleans (or the integers 0 and 1) are accepted: NumPy would silently turn
    the string ``"put"`` into ``True``.
    """
    arr = np.asarray(value)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iu" and np.all((arr == 0) | (arr == 1)):
        return arr.astype(bool)
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def _count(name, value):
    """``value`` as a float array of integers >= 1 (kept float so it broadcasts in formulas)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    bad = ~(np.isfinite(arr) & (arr >= 1.0) & (arr == np.round(arr)))
    if np.any(bad):
        raise ValueError(f"{name} must be an integer >= 1, got {_first_bad(arr, bad)!r}")
    return arr


def _package(results, *inputs):
    """Broadcast every Greek to the common shape of ``inputs``; floats if all inputs are scalars."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in inputs))
    if shape == ():
        return {key: float(results[key]) for key in GREEKS}
    return {key: np.array(np.broadcast_to(results[key], shape), dtype=float) for key in GREEKS}


def _market(spot, strike, maturity, rate, vol, div_yield, is_call):
    """The common arguments of the GBM closed forms as float arrays (and is_call as bool), each
    checked: spot, strike, maturity and vol positive, rate and div_yield finite."""
    return (_positive("spot", spot), _positive("strike", strike), _positive("maturity", maturity),
            _positive("vol", vol), _finite("rate", rate), _finite("div_yield", div_yield),
            _flag("is_call", is_call))
