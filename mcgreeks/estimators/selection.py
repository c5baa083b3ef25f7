"""Which estimator each trade's Greeks take: the user's ``method`` against the validity table.

``method`` is "auto", one estimator name, or {greek: name}.  One name asks for that estimator of
every Greek it can estimate for some payoff under the trade's model (``validity.applies``;
pathwise: first-order Greeks; mixed: gamma; fd: all; lr: all under GBM, delta, gamma and rho
under Heston); the other Greeks stay on auto, visibly so in their ``method_`` columns.  An estimator asked for a
Greek it is invalid for on a trade's payoff is an error, never a silently biased number.  For auto,
the candidates are the valid estimators other than fd (fd only when nothing else is valid; under
Heston fd instead of, or beside, pathwise where pathwise can be heavy-tailed,
``validity.auto_candidates``):
the optimal blend where it is offered (it is never worse than either estimator it blends),
otherwise the one with the lowest variance in a pilot run among those whose pilot passes the
tail test (``underlying.pilot``).
"""
from mcgreeks import greeks as G
from mcgreeks import payoffs
from mcgreeks.estimators.validity import (PATHWISE_FELLER, applies, auto_candidates,
                                          valid_estimators, why_invalid)
from mcgreeks.models import MODELS
from mcgreeks.pricers import heston_multi as M
from mcgreeks.validation import InputError


#: The codes of every Greek and pair measure (``greeks="all"``).
ALL_GREEKS = tuple(range(1, G.N_QUANTITIES + len(G.PAIR_MEASURES)))


def greek_plan(greeks):
    """The Greek codes asked for, in column order, from the ``greeks`` argument: "all", "none",
    a list of names or one comma-separated string of them.  InputError naming a bad name and
    listing the valid ones."""
    if isinstance(greeks, str):
        text = greeks.strip().lower()
        if text in ("all", "none"):
            return ALL_GREEKS if text == "all" else ()
        names = [n.strip() for n in text.split(",") if n.strip()]
    else:
        try:
            names = [str(n).strip().lower() for n in greeks]
        except TypeError:
            raise InputError(f"greeks has value {greeks!r}: must be 'all', 'none' or a list of "
                             "Greek names") from None
    bad = [n for n in names if n not in G.MEASURES]
    if bad:
        raise InputError(f"greeks has value {bad[0]!r}: not a Greek; valid: all, none, or any of "
                         + ", ".join(G.MEASURES))
    return tuple(g for g in ALL_GREEKS if G.MEASURES[g - 1] in names)


def method_plan(method, asked=ALL_GREEKS):
    """(default name, {greek code: name}) from the ``method`` argument; InputError if bad,
    including a per-Greek method for a Greek not ``asked`` (codes from ``greek_plan``)."""
    if isinstance(method, str):
        name = method.lower()
        if name != "auto" and name not in G.ESTIMATORS:
            raise InputError(f"method {method!r}: must be auto or one of " + ", ".join(G.ESTIMATORS))
        return name, {}
    explicit = {}
    for greek, name in dict(method).items():
        name = str(name).lower()
        if greek not in G.MEASURES:
            raise InputError(f"method: unknown Greek {greek!r}; Greeks are "
                             + ", ".join(G.MEASURES))
        if name not in ("auto",) + G.ESTIMATORS:
            raise InputError(f"method[{greek!r}] = {name!r}: must be auto or one of "
                             + ", ".join(G.ESTIMATORS))
        code = G.MEASURES.index(greek) + 1
        if code not in asked:
            raise InputError(f"method names an estimator for {greek}, which greeks does not ask "
                             "for: add it to greeks or drop it from method")
        explicit[code] = name
    return "auto", explicit


def choices(record, plan, model="gbm", params=None, sampler="mc",
            asked=ALL_GREEKS, blends=True):
    """Per Greek code of ``model`` that is ``asked`` (``greek_plan``): the estimator code, or the tuple of candidates a pilot
    decides among.  A per-Greek choice for a Greek the model lacks (vega under Heston) is moot.
    With ``sampler="sobol"`` auto keeps optimal among the candidates rather than taking it: its
    weights are fitted for Monte Carlo variance, and quasi-Monte Carlo favours smooth estimators
    (a Sobol pilot decides).  ``blends=False`` (a GBM underlying priced in a group with a Heston
    one, where no GBM pilot fits weights) takes optimal out: auto's candidates are then decided
    by the pilot's variances, and asking for it is an error.

    Raises InputError naming the trade when the plan asks for an invalid estimator."""
    kind = payoffs.KINDS[record["payoff"]]
    continuous = record.get("monitoring") == "continuous"
    exercise = record.get("exercise", "european") != "european"
    default, explicit = plan
    cap = MODELS[model].capability
    everywhere = () if default == "auto" else applies(cap, G.ESTIMATORS.index(default))
    out = {}
    for g in cap.greeks:
        if g not in asked:
            continue
        name = explicit.get(g, default if default == "auto" or g in everywhere else "auto")
        valid = valid_estimators(cap, kind, g, continuous, params, exercise)
        if name == "auto":
            candidates = auto_candidates(cap, kind, g, continuous, params, exercise)
            if not blends:
                candidates = tuple(e for e in candidates if e != G.OPTIMAL)
            if G.OPTIMAL in candidates and sampler != "sobol":
                candidates = (G.OPTIMAL,)
            out[g] = candidates[0] if len(candidates) == 1 else candidates
            continue
        e = G.ESTIMATORS.index(name)
        if e == G.OPTIMAL and not blends:
            raise InputError(
                f"trade {record['trade_id']!r}: column 'method' has value 'optimal' for "
                f"{G.QUANTITIES[g]}: the optimal blend is fitted by the GBM pilot, which a gbm "
                "underlying simulated together with a heston one does not have; valid: "
                + ", ".join(G.ESTIMATORS[v] for v in valid if v != G.OPTIMAL))
        if e not in valid:
            raise InputError(
                f"trade {record['trade_id']!r}: column 'method' has value {name!r} for "
                f"{G.QUANTITIES[g]} of a {record['payoff']} {record['option_type']}: "
                f"{why_invalid(cap, kind, g, e, continuous, params, exercise)}; valid: "
                + ", ".join(G.ESTIMATORS[v] for v in valid))
        out[g] = e
    return out


#: The Greek code (``greek_plan``) each multi-asset measure is asked by.
ASKED_BY = {M.DELTA: G.DELTA, M.GAMMA: G.GAMMA, M.VEGA: G.VEGA, M.CROSS_GAMMA: G.CROSS_GAMMA,
             M.PAIR_CORR: G.D_PAIR_CORR, M.RHO: G.RHO, M.THETA: G.THETA, M.D_V0: G.D_V0,
             M.D_KAPPA: G.D_KAPPA, M.D_VBAR: G.D_VBAR, M.D_XI: G.D_XI, M.D_CORR: G.D_CORR}


def multi_asset_choices(record, plan, asked=ALL_GREEKS, params=None):
    """``choices`` for a multi-asset trade (a record with ``underlyings``): {N_QUANTITIES + r:
    estimator code} for each of its measures r (``pricers.gbm_multi.measures``) whose Greek is ``asked``.
    Auto takes pathwise for first-order measures and mixed for second-order ones
    (``gbm_multi.VALID``: the payoffs are Lipschitz); one estimator name applies where it is
    valid, the rest stay auto; a per-Greek name invalid for a measure is an InputError
    (cross_gamma and d_pair_corr may be named like the Greeks)."""
    default, explicit = plan
    params = params or [{"model": "gbm"}] * len(record["underlyings"])
    models = [p["model"] for p in params]
    out = {}
    for r, (code, k, _) in enumerate(M.measures(models)):
        greek = ASKED_BY[code]
        if greek not in asked:
            continue
        name = explicit.get(greek, default)
        valid = M.valid(params, code)
        if record.get("exercise", "european") != "european":
            # pathwise and mixed at each path's stopping date, fd re-stopping moved paths; no
            # likelihood ratio (every date's scores) yet
            valid = (valid[0], G.FD)
        if name == "auto" and G.PATHWISE in valid and _heavy_pathwise(code, k, params):
            valid = (G.FD,) + tuple(e for e in valid if e != G.FD)
        if name != "auto" and G.ESTIMATORS.index(name) not in valid:
            if greek in explicit:
                raise InputError(
                    f"trade {record['trade_id']!r}: column 'method' has value {name!r} for "
                    f"{G.MEASURES[greek - 1]} of a {record['payoff']} {record['option_type']}: "
                    + ("not offered for early exercise on several underlyings yet; valid: "
                       if record.get("exercise", "european") != "european" else
                       "not offered on several underlyings; valid: ")
                    + ", ".join(G.ESTIMATORS[v] for v in valid))
            name = "auto"
        out[G.N_QUANTITIES + r] = valid[0] if name == "auto" else G.ESTIMATORS.index(name)
    return out


def _heavy_pathwise(code, k, params):
    """Whether auto takes fd over pathwise for measure (code, k) of a multi-asset trade whose
    legs have market ``params``: theta, a Heston leg's d_v0 ... d_corr and the pair
    correlations are read from the variance paths' tangents or reverse sweeps, heavy-tailed
    once a leg's Feller ratio is below ``validity.PATHWISE_FELLER``'s upper bound (theta and
    the pairs read every Heston leg's; there is no pilot to compare the two on a multi-asset
    trade yet).  With GBM legs only, pathwise is exact and light-tailed."""
    from mcgreeks.models.heston import feller_ratio
    if code in (M.THETA, M.PAIR_CORR):
        legs = [p for p in params if p["model"] == "heston"]
    elif code in (M.D_V0, M.D_KAPPA, M.D_VBAR, M.D_XI, M.D_CORR):
        legs = [params[k]]
    else:
        return False
    return any(feller_ratio(p) < PATHWISE_FELLER[1] for p in legs)
