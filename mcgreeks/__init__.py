"""mcgreeks: Monte Carlo prices and Greeks with standard errors, compiled with numba."""
from mcgreeks.option import OptionResult, price_option
from mcgreeks.portfolio import aggregate, price_portfolio
from mcgreeks.risk import aggregate_risk
from mcgreeks.validation import InputError

__all__ = ["price_portfolio", "price_option", "OptionResult", "aggregate", "aggregate_risk",
           "InputError"]
__version__ = "0.1.0"
