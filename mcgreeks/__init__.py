"""mcgreeks: Monte Carlo prices and Greeks with standard errors, compiled with numba."""
from mcgreeks.portfolio import aggregate, price_portfolio
from mcgreeks.validation import InputError

__all__ = ["price_portfolio", "aggregate", "InputError"]
__version__ = "0.1.0"
