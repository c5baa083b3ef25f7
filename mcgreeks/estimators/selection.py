"""Which estimator each trade's Greeks take: the user's ``method`` against the validity table.

``method`` is "auto", one estimator name, or {greek: name}.  One name asks for that estimator of
every Greek it can estimate at all (pathwise: first-order Greeks; mixed: gamma; lr and fd: all);
the other Greeks stay on auto, visibly so in their ``method_`` columns.  An estimator asked for a
Greek it is invalid for on a trade's payoff is an error, never a silently biased number.  For auto,
the candidates are the valid estimators other than fd (fd only when nothing else is valid), and a
pilot run picks the one with the lowest variance.
"""
from mcgreeks import greeks as G
from mcgreeks import payoffs
from mcgreeks.estimators import valid_estimators, why_invalid
from mcgreeks.validation import InputError

_APPLIES = {"pathwise": (G.DELTA, G.VEGA, G.RHO, G.THETA), "mixed": (G.GAMMA,),
            "lr": tuple(range(1, 6)), "fd": tuple(range(1, 6))}


def method_plan(method):
    """{greek code: estimator name or 'auto'} from the ``method`` argument; InputError if bad."""
    if isinstance(method, str):
        name = method.lower()
        if name != "auto" and name not in G.ESTIMATORS:
            raise InputError(f"method {method!r}: must be auto or one of " + ", ".join(G.ESTIMATORS))
        return {g: name if name != "auto" and g in _APPLIES[name] else "auto" for g in range(1, 6)}
    plan = {g: "auto" for g in range(1, 6)}
    for greek, name in dict(method).items():
        name = str(name).lower()
        if greek not in G.GBM_GREEKS:
            raise InputError(f"method: unknown Greek {greek!r}; Greeks are " + ", ".join(G.GBM_GREEKS))
        if name not in ("auto",) + G.ESTIMATORS:
            raise InputError(f"method[{greek!r}] = {name!r}: must be auto or one of "
                             + ", ".join(G.ESTIMATORS))
        plan[G.QUANTITIES.index(greek)] = name
    return plan


def choices(record, plan):
    """Per Greek code: the estimator code, or the tuple of candidates a pilot decides among.

    Raises InputError naming the trade when the plan asks for an invalid estimator."""
    kind = payoffs.KINDS[record["payoff"]]
    continuous = record.get("monitoring") == "continuous"
    out = {}
    for g, name in plan.items():
        valid = valid_estimators(kind, g, continuous)
        if name == "auto":
            candidates = tuple(e for e in valid if e != G.FD) or (G.FD,)
            out[g] = candidates[0] if len(candidates) == 1 else candidates
            continue
        e = G.ESTIMATORS.index(name)
        if e not in valid:
            raise InputError(
                f"trade {record['trade_id']!r}: column 'method' has value {name!r} for "
                f"{G.QUANTITIES[g]} of a {record['payoff']} {record['option_type']}: "
                f"{why_invalid(kind, g, e, continuous)}; valid: "
                + ", ".join(G.ESTIMATORS[v] for v in valid))
        out[g] = e
    return out
