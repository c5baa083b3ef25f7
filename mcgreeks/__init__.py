"""mcgreeks: Monte Carlo prices and Greeks with standard errors, compiled with numba.

The public names are imported at first use (PEP 562), so ``import mcgreeks`` and the command
line's start are quick, and a Ctrl-C while pandas and numba load is handled like any other.
"""
import importlib

__version__ = "0.4.1"

#: Public name -> the module that defines it.
_PUBLIC = {"price_portfolio": "mcgreeks.portfolio", "aggregate": "mcgreeks.portfolio",
           "price_option": "mcgreeks.option", "OptionResult": "mcgreeks.option",
           "aggregate_risk": "mcgreeks.risk", "InputError": "mcgreeks.validation"}
__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mcgreeks' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
