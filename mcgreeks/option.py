"""One option from Python in one call: keyword arguments in, value ± standard error out.

``price_option`` builds the one-row trades and market tables that ``price_portfolio`` takes and
prices them on the same engine, so a single option and a book give the same numbers for the same
seed.  Its result prints as a small table and answers ``result["delta"]`` with (value, se).
"""
from dataclasses import dataclass

import pandas as pd

from mcgreeks import greeks as G
from mcgreeks.formatting import with_error
from mcgreeks.models import COMMON_PARAMETERS, MODELS
from mcgreeks.portfolio import price_portfolio
from mcgreeks.validation import InputError

#: Keyword arguments that describe the contract (trades columns) and the model (market columns).
CONTRACT = ("payoff", "option_type", "strike", "maturity", "quantity", "cash", "barrier",
            "barrier_type", "monitoring", "n_fixings")
MODEL = tuple(p.name for p in COMMON_PARAMETERS) + tuple(
    p.name for m in MODELS.values() for p in m.parameters)
#: The model of an option that names none: the one whose parameters it is given, else this.
DEFAULT_MODEL = "gbm"


def _names(parameters):
    """'a, b and c' of the parameters' names."""
    names = [p.name for p in parameters]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _model_of(model, values):
    """The model's name: ``model``; else the model other than ``DEFAULT_MODEL`` whose first
    own parameter is given, or ``DEFAULT_MODEL``.  InputError when another model's own
    parameters are given too."""
    model = model or next((name for name, m in MODELS.items()
                           if name != DEFAULT_MODEL and values[m.parameters[0].name] is not None),
                          DEFAULT_MODEL)
    own = MODELS.get(model)      # an unknown name is the market check's to report
    for other in MODELS.values():
        if own is None or other is own \
                or all(values[p.name] is None for p in other.parameters):
            continue
        what = (f"{other.parameters[0].name} is a {other.label} parameter"
                if len(other.parameters) == 1
                else f"{_names(other.parameters)} are {other.label} parameters")
        raise InputError(f"price_option: {what}; pass model={other.name!r} (and no "
                         f"{_names(own.parameters)}) or drop them")
    return model


@dataclass(frozen=True)
class OptionResult:
    """Value, standard error and estimator of each measure of one priced option.

    ``table`` is indexed by measure (price first, then the Greeks asked for that the model
    defines) with columns value, se, method; ``description`` says what was priced and how;
    ``warning`` is empty or names the standard errors that failed the tail test."""
    table: pd.DataFrame
    description: str
    warning: str = ""

    def __getitem__(self, measure):
        """(value, se) of ``measure``."""
        row = self.table.loc[measure]
        return float(row["value"]), float(row["se"])

    def value(self, measure="price"):
        return self[measure][0]

    def se(self, measure="price"):
        return self[measure][1]

    def method(self, measure):
        """The estimator that produced ``measure`` ('' for the price)."""
        return self.table.at[measure, "method"]

    def to_frame(self):
        return self.table.copy()

    def __str__(self):
        width = max(len(q) for q in self.table.index)
        lines = [self.description]
        for q, row in self.table.iterrows():
            text = with_error(row["value"], row["se"])
            lines.append(f"  {q:<{width}}  {text}" + (f"  ({row['method']})" if row["method"]
                                                       else ""))
        if self.warning:
            lines.append(f"  warning: {self.warning}")
        return "\n".join(lines)

    __repr__ = __str__


def price_option(payoff="european", option_type="call", *, spot, strike, maturity, rate=0.0,
                 div_yield=0.0, vol=None, v0=None, kappa=None, vbar=None, xi=None, corr=None,
                 model=None, quantity=1.0, cash=None, barrier=None, barrier_type=None,
                 monitoring=None, n_fixings=None, n_paths=100_000, seed=0, greeks="all",
                 method="auto", **options):
    """Price one option and its Greeks, each with its Monte Carlo standard error.

    The contract's keywords are the trades table's columns and the model's the market table's
    (docs/reference.md): e.g. ``price_option("european", "call", spot=100, strike=100,
    maturity=1, vol=0.2, rate=0.03)``, or a Heston model with ``v0, kappa, vbar, xi, corr``
    instead of ``vol``.  ``model`` defaults to "heston" when v0 is given, else "gbm".
    ``n_paths``, ``seed``, ``greeks``, ``method`` and any further keyword (``steps_per_year``,
    ``scheme``, ``sampler``, ``fd_bumps``, ...) are ``price_portfolio``'s.  The underlying is
    named "underlying" (its name keys the random stream), so the same option in a book on an
    underlying of that name gets the same bits.

    Returns:
      OptionResult: value ± SE and estimator per measure, for ``quantity`` units (default 1).
    Raises:
      InputError: a bad value, named with its keyword (the column of the same name).
    """
    model = _model_of(model, locals())
    for name in ("on_error", "risk", "diagnostics"):
        if name in options:
            raise InputError(f"price_option: {name} is a price_portfolio option only")
    values = dict(locals())
    trade = {"trade_id": "option", "underlying": "underlying",
             **{c: values[c] for c in CONTRACT if values[c] is not None}}
    market = {"underlying": "underlying", "model": model,
              **{c: values[c] for c in MODEL if values[c] is not None}}
    results, notes = price_portfolio(pd.DataFrame([trade]), pd.DataFrame([market]),
                                     n_paths=n_paths, seed=seed, greeks=greeks, method=method,
                                     diagnostics=True, **options)
    row = results.iloc[0]
    measures = [q for q in G.QUANTITIES if q in results.columns and pd.notna(row[q])]
    table = pd.DataFrame({"value": [row[q] for q in measures],
                          "se": [row[q + "_se"] for q in measures],
                          "method": [row.get("method_" + q, "") if q != "price" else ""
                                     for q in measures]},
                         index=pd.Index(measures, name="measure"))
    terms = [f"{payoff} {option_type}", f"K={strike:g}", f"T={maturity:g}"]
    if barrier is not None:
        terms.append(f"{barrier_type or ''} barrier {barrier:g}".strip())
    shown = COMMON_PARAMETERS + (MODELS[model].parameters if model in MODELS else ())
    params = ", ".join(f"{p.name}={values[p.name]:g}" for p in shown
                       if values[p.name] is not None)
    description = (f"{', '.join(terms)} under {model} ({params}); {n_paths:,} paths, seed {seed}"
                   + (f", quantity {quantity:g}" if quantity != 1 else ""))
    return OptionResult(table, description, row["warning"])
