"""Names and integer codes shared by the kernels and the pandas layer.

Kernels see only integers; the tables see only names.  This module is the one mapping between them.
"""

#: Output quantities in column order (docs/reference.md#output-columns); index 0 is the price.
QUANTITIES = ("price", "delta", "gamma", "vega", "rho", "theta",
              "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")
GREEKS = QUANTITIES[1:]
PRICE, DELTA, GAMMA, VEGA, RHO, THETA = range(6)
D_V0, D_KAPPA, D_VBAR, D_XI, D_CORR = range(6, 11)
N_QUANTITIES = len(QUANTITIES)
#: Measures of trades on several underlyings that have no column of the wide table (one value
#: per pair of names: the long risk table's rows), asked for by name like a Greek; their codes
#: follow the quantities'.
PAIR_MEASURES = ("cross_gamma", "d_pair_corr")
CROSS_GAMMA, D_PAIR_CORR = range(N_QUANTITIES, N_QUANTITIES + 2)
#: Every name ``greeks=`` accepts, in code order from 1.
MEASURES = GREEKS + PAIR_MEASURES

#: Estimators, in the order of the kernels' estimator axis.
#: ``optimal`` is the per-path blend of pathwise (mixed for gamma) and likelihood ratio with the
#: least variance (``mcgreeks.estimators.optimal``); ``vibrato`` is pathwise along the path and
#: likelihood ratio over its last step (``mcgreeks.estimators.vibrato``).
ESTIMATORS = ("pathwise", "lr", "mixed", "fd", "optimal", "vibrato")
PATHWISE, LR, MIXED, FD, OPTIMAL, VIBRATO = range(6)
N_ESTIMATORS = len(ESTIMATORS)

#: Greeks a GBM model defines (vega is GBM only; d_* are Heston only).
GBM_GREEKS = ("delta", "gamma", "vega", "rho", "theta")
#: Greeks a Heston model defines.
HESTON_GREEKS = ("delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")
