"""Vibrato estimator: pathwise along the path, likelihood ratio over its last step.

Conditional on everything before it, a model's last step of log-spot is Gaussian,
x_N = μ + s Z, with μ and s smooth functions of the path so far and of the parameters.  The
conditional expectation E[f(x_N) | path] is then smooth even when f jumps, so it may be
differentiated pathwise along the path, and its own derivatives in μ and s are the Gaussian
likelihood ratios

    ∂μ E[f] = E[f Z]/s,   ∂s E[f] = E[f (Z² - 1)]/s,   ∂²μ E[f] = E[f (Z² - 1)]/s².

Each is evaluated with the antithetic pair x± = μ ± s Z and, for the even weights, the baseline
f⁰ = f(μ) (Z² - 1 has mean zero).  For a digital the odd difference f⁺ - f⁻ vanishes unless μ is
within about s of the strike, so the variance grows like s⁻¹ as the last step shrinks, against s⁻²
for likelihood ratio over a first step of the same length.
Reference: M. B. Giles, "Vibrato Monte Carlo sensitivities", Monte Carlo and Quasi-Monte Carlo
Methods 2008, Springer (2009), §2-3.

The functions below take the three payoff values (f⁺, f⁻, f⁰), the normal Z of the last step and
its standard deviation s, and return the estimate of a derivative in μ or s for one path.
"""
from mcgreeks._jit import kernel


@kernel
def d_mean(f_up, f_down, z, s):
    """One path's ∂μ E[f | path]: (f⁺ - f⁻)/2 · Z/s."""
    return 0.5 * (f_up - f_down) * z / s


@kernel
def d_sd(f_up, f_down, f_mid, z, s):
    """One path's ∂s E[f | path]: ((f⁺ + f⁻)/2 - f⁰) · (Z² - 1)/s."""
    return (0.5 * (f_up + f_down) - f_mid) * (z * z - 1.0) / s


@kernel
def d2_mean(f_up, f_down, f_mid, z, s):
    """One path's ∂²μ E[f | path]: ((f⁺ + f⁻)/2 - f⁰) · (Z² - 1)/s²."""
    return (0.5 * (f_up + f_down) - f_mid) * (z * z - 1.0) / (s * s)
