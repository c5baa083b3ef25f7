"""The models, each as one record of what the Python side needs of it: ``MODELS[name]``.

A record names the model's market columns and their checks, the Greeks it offers and its
capability in the validity table (``estimators.validity``), its default fd bumps
(``estimators.fd``), and how its kernels are reached and fed (``kernel_inputs``).  Code outside
a model's own modules looks a model up here rather than branching on its name, so adding a model
is a record here, its kernels and its kernel-input builder.

The kernel modules are imported when ``Model.kernels`` is first called: the registry itself is
cheap to import and imports no kernels (``mcgreeks.models.heston`` and ``.gbm`` are kernel
modules, and importing one of them runs this file first).
"""
import importlib
import math
from dataclasses import dataclass, field
from typing import Callable

from mcgreeks import kernel_inputs
from mcgreeks.estimators import fd, validity

@dataclass(frozen=True)
class Parameter:
    """A market column of a model and its domain: above ``low`` (at or above it when not
    ``low_open``) and at most ``high``; None: unbounded.  ``default``: its value when the
    column is absent or empty (None: required)."""
    name: str
    low: float = None
    low_open: bool = True
    high: float = None
    default: float = None

    def bounds(self):
        """The domain as ``validation``'s number check takes it."""
        return {"low": self.low, "low_open": self.low_open, "high": self.high,
                "default": self.default}

    def rule(self):
        """The domain in words, for error messages (as ``validation`` reports it)."""
        if self.low is not None and self.high is not None:
            return f"must be in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"must be {'>' if self.low_open else '>='} {self.low:g}"
        return "must be finite"

    def holds(self, x):
        """Whether the number ``x`` is finite and in the domain."""
        return math.isfinite(x) and (
            self.low is None or (x > self.low if self.low_open else x >= self.low)) and (
            self.high is None or x <= self.high)


#: Market columns every model takes (docs/reference.md#market).
COMMON_PARAMETERS = (Parameter("spot", low=0.0), Parameter("rate"),
                     Parameter("div_yield", default=0.0))


@dataclass(frozen=True)
class Model:
    """What the Python side needs of one model.

    Attributes:
      name: the market table's ``model`` value.
      label: its name in messages.
      parameters: its own market columns (``Parameter``), besides ``COMMON_PARAMETERS``.
      capability: its row of the validity table (``estimators.validity.Capability``).
      bumps: its default fd bump sizes, in its kernel's order (``estimators.fd``).
      samplers: the path samplers it offers ("mc" and "antithetic", which every kernel takes
        through its normals; "sobol" where its kernel takes Sobol points).
      geometric_control: whether an arithmetic Asian takes its geometric twin's closed form as a
        control variate (known under GBM only).
      pricer: the module of its kernels (``chunk``; ``pilot_chunk`` where ``pilot_inputs`` is
        set).  ``dataclasses.replace`` a record in ``MODELS`` with another module name to run
        other kernels (a study's recompiled copy).
      kernel_inputs: (job, slots, totals, sampler) -> ``chunk``'s arguments after the keys
        (``kernel_inputs``).
      call_paths: (args, chunk_paths) -> paths per ``chunk`` call.
      pilot_inputs: job -> ``pilot_chunk``'s model and trade arguments, for a model whose pilot
        fits likelihood-ratio baselines and optimal blends; None: no such fit.
    """
    name: str
    label: str
    parameters: tuple
    capability: validity.Capability
    bumps: dict
    pricer: str
    kernel_inputs: Callable
    samplers: tuple = ("mc", "antithetic")
    geometric_control: bool = False
    call_paths: Callable = field(default=lambda args, chunk_paths: chunk_paths)
    pilot_inputs: Callable = None

    @property
    def greeks(self):
        """The quantity codes of the Greeks the model defines."""
        return self.capability.greeks

    def kernels(self):
        """The module holding the model's kernels (imported on first use)."""
        return importlib.import_module(self.pricer)

    def bump_sizes(self, overrides=None):
        """The fd bump array its kernel takes (``estimators.fd.bumps``)."""
        return fd.bumps(overrides, self.bumps)


#: The models, in the order they are documented.
MODELS = {
    "gbm": Model(
        name="gbm", label="GBM", parameters=(Parameter("vol", low=0.0),),
        capability=validity.GBM, bumps=fd.GBM_BUMPS, samplers=("mc", "antithetic", "sobol"),
        geometric_control=True, pricer="mcgreeks.pricers.gbm",
        kernel_inputs=kernel_inputs.gbm, pilot_inputs=kernel_inputs.gbm_pilot,
        call_paths=kernel_inputs.gbm_call_paths),
    "heston": Model(
        name="heston", label="Heston",
        parameters=(Parameter("v0", low=0.0, low_open=False), Parameter("kappa", low=0.0),
                    Parameter("vbar", low=0.0), Parameter("xi", low=0.0),
                    Parameter("corr", low=-1.0, low_open=False, high=1.0)),
        capability=validity.HESTON, bumps=fd.HESTON_BUMPS, pricer="mcgreeks.pricers.heston",
        kernel_inputs=kernel_inputs.heston, call_paths=kernel_inputs.heston_call_paths),
}
