"""mcgreeks: Monte Carlo prices and Greeks with standard errors."""
