"""One path's estimate of a quantity by an estimator, from a trade's per-path quantities: the part
of every pricer that does not depend on the model or the payoff, written once.

A pricer (a model's paths read by a payoff) fills, per trade and tile of paths, the rows of a
buffer q with undiscounted per-path quantities (the layout below); ``estimate`` discounts them,
adds the discount's own derivative and applies the estimator's one-path formula
(``pathwise``, ``likelihood_ratio``, ``mixed``, ``vibrato``, ``optimal``).  Bump-and-revalue
stays with the model, which re-reads or re-simulates its paths.

Rows of q (path i in column i):
- F: the payoff f (a barrier's weight included); U: its underlying quantity u; SLOPE: f'(u)
  (times the weight where f is Lipschitz);
- SC2: (∂²p/∂S0²)/p of the path's law, X2: ∂²f/∂S0² at a fixed path (likelihood-ratio gamma);
- Z_FIRST, Z_LAST, Q_EXCESS: the inputs of the baseline's controls (``optimal.controls``);
- per quantity g (``greeks.QUANTITIES``; theta's rows are those of ∂/∂T, the sign of
  theta = -∂V/∂T applied here): D + g, the pathwise derivative ∂f/∂θ_g along the path (slope
  times the tangent of u, plus the payoff's explicit derivative); SC + g, the score
  ∂ log p/∂θ_g; X + g, ∂f/∂θ_g at a fixed path (the explicit part a likelihood ratio adds, zero
  but for a continuous barrier's weight); VB + g, the vibrato estimate of
  ∂E[D f]/∂θ_g divided by the discount D.
"""
from mcgreeks import greeks as G
from mcgreeks._jit import kernel
from mcgreeks.estimators import likelihood_ratio as lr, mixed, optimal, pathwise

F, U, SLOPE, SC2, X2, Z_FIRST, Z_LAST, Q_EXCESS = range(8)
D = 8
SC = D + G.N_QUANTITIES
X = SC + G.N_QUANTITIES
VB = X + G.N_QUANTITIES
N_ROWS = VB + G.N_QUANTITIES


@kernel(inline=True)
def _discount_derivative(g, rate, pay, disc):
    """∂D/∂θ_g of the discount D = exp(-r t_pay) of a cash flow paid at ``pay``
    (``payoffs.payment_time``): -t_pay D for rho, -r D for ∂/∂T (a payment at the maturity
    moves with it), else 0."""
    if g == G.RHO:
        return -pay * disc
    if g == G.THETA:
        return -rate * disc
    return 0.0


@kernel(inline=True)
def direct(g, q, i, s0, rate, pay, disc, jumps):
    """One path's direct estimate of quantity g: vibrato for a payoff that ``jumps``, else
    pathwise (mixed for gamma: the pathwise delta D f'(u) u/S0 differentiated by likelihood ratio
    through the spot's score, with ∂(u/S0)/∂S0 = -u/S0² at a fixed path, u being homogeneous of
    degree 1 in S0)."""
    if jumps:
        d = disc * q[VB + g, i]
    elif g == G.GAMMA:
        u = q[U, i]
        return mixed.gamma(disc, q[SLOPE, i], u / s0, -u / (s0 * s0), q[SC + G.DELTA, i])
    else:
        d = pathwise.first_order(disc, _discount_derivative(g, rate, pay, disc), q[F, i],
                                 1.0, q[D + g, i], 0.0)
    return -d if g == G.THETA else d


@kernel(inline=True)
def likelihood(g, q, i, rate, pay, disc):
    """One path's likelihood-ratio estimate of quantity g."""
    f = q[F, i]
    if g == G.GAMMA:
        return lr.second_order(disc, f, q[SC2, i], q[SC + G.DELTA, i], q[X + G.DELTA, i],
                               q[X2, i])
    d = lr.first_order(disc, _discount_derivative(g, rate, pay, disc), f, q[SC + g, i],
                       q[X + g, i])
    return -d if g == G.THETA else d


@kernel(inline=True)
def estimate(g, e, q, i, s0, rate, pay, disc, jumps, coef, baseline):
    """One path's estimate of quantity g by estimator e (not fd) from the rows of q.
    Likelihood ratio, vibrato and optimal take the baseline c = ``coef[1:]`` and the blend
    weight (``coef[0]`` for optimal, 0 for lr, 1 for vibrato; ``estimators.optimal``), the
    baseline's controls only when ``baseline`` (a control twin, or a model without a pilot
    fit, goes without); a model without a fit passes coef = 0."""
    if g == G.PRICE:
        return disc * q[F, i]
    if e == G.PATHWISE or e == G.MIXED:
        return direct(g, q, i, s0, rate, pay, disc, jumps)
    d = direct(g, q, i, s0, rate, pay, disc, jumps) if e != G.LR else 0.0
    ell = likelihood(g, q, i, rate, pay, disc) if e != G.VIBRATO else 0.0
    w = coef[optimal.W] if e == G.OPTIMAL else (1.0 if e == G.VIBRATO else 0.0)
    if not baseline:
        return optimal.blend(w, coef, d, ell, 0.0, 0.0, 0.0, 0.0, 0.0)
    c1, c2, c3, c4, c5 = optimal.controls(q[Z_FIRST, i], q[Z_LAST, i], q[Q_EXCESS, i])
    return optimal.blend(w, coef, d, ell, c1, c2, c3, c4, c5)


@kernel(inline=True)
def estimate_tile(g, e, q, m, s0, rate, pay, disc, jumps, coef, baseline, x):
    """``estimate`` of paths 0..m-1 into x[:m], the same bits, in loops split by what is the
    same for every path (the quantity, the estimator, the baseline): one loop holding every
    estimator's code is one LLVM neither vectorizes nor unswitches, and it cost a GBM
    European 6 ns a path per estimate (15 with the blend's call).  The blend's weight and
    baseline coefficients are read once, as scalars."""
    if g == G.PRICE:
        for i in range(m):
            x[i] = disc * q[F, i]
        return
    if e == G.PATHWISE or e == G.MIXED:
        for i in range(m):
            x[i] = direct(g, q, i, s0, rate, pay, disc, jumps)
        return
    if e == G.LR:
        for i in range(m):
            x[i] = 0.0
    else:
        for i in range(m):
            x[i] = direct(g, q, i, s0, rate, pay, disc, jumps)
    w = coef[optimal.W] if e == G.OPTIMAL else (1.0 if e == G.VIBRATO else 0.0)
    k1, k2, k3, k4, k5 = coef[1], coef[2], coef[3], coef[4], coef[5]
    for i in range(m):
        ell = likelihood(g, q, i, rate, pay, disc) if e != G.VIBRATO else 0.0
        c1 = c2 = c3 = c4 = c5 = 0.0
        if baseline:
            c1, c2, c3, c4, c5 = optimal.controls(q[Z_FIRST, i], q[Z_LAST, i], q[Q_EXCESS, i])
        # optimal.blend's expression
        x[i] = (w * x[i] + (1.0 - w) * ell
                - (k1 * c1 + k2 * c2 + k3 * c3 + k4 * c4 + k5 * c5))


#: ``estimate`` called rather than inlined, for a pricer whose paths cost microseconds (Heston):
#: one compiled copy instead of an inlined one saves compile time, where inlining saves a GBM
#: path's few nanoseconds (a call passes every array as about ten scalars).
estimate_called = kernel(estimate.py_func)
