"""The same bits on another machine: the sample, American and Heston-group books priced on this CPU
and on an emulated older one, whose NumPy takes its AVX2 (or AVX) loops
(``NPY_DISABLE_CPU_FEATURES``: exp and log differ from the AVX-512 ones in last bits), whose
OpenBLAS takes another CPU's kernels (``OPENBLAS_CORETYPE``: matrix products sum in another
order) and, in one case, whose glibc takes its libm without FMA (``GLIBC_TUNABLES``), give
byte-identical output files (docs/reference.md#reproducibility).  Real subprocesses of the
command line.  numba's own kernels are compiled for this CPU either way; their results do not
depend on it (no fast-math, fused multiply-adds exactly rounded)."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
OLDER_CPUS = {
    "AVX2, OpenBLAS Haswell": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                               "OPENBLAS_CORETYPE": "Haswell"},
    # and glibc's libm without its FMA variants (exp, log and pow differ from them in last bits)
    "AVX, OpenBLAS Sandybridge, glibc without FMA": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR X86_V3",
        "OPENBLAS_CORETYPE": "Sandybridge", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
}
#: What differs between CPUs below mcgreeks: NumPy's exp and log loops and OpenBLAS' products.
PROBE = ("import hashlib, numpy as np; x = np.random.default_rng(0).standard_normal((4096, 6));"
         "print(hashlib.sha1(np.exp(x).tobytes() + np.log(np.abs(x)).tobytes()"
         " + (x.T @ x).tobytes()).hexdigest())")
BOOKS = {
    "sample": ["data/trades.csv", "--market", "data/market.csv", "--correlations",
               "data/correlations.csv", "--paths", "8000"],
    "american": ["data/american/trades.csv", "--market", "data/american/market.csv",
                 "--paths", "4000"],
    # correlated Heston names: the conditional law of spot given variance noises, by fsum
    "heston group": ["data/heston_group/trades.csv", "--market",
                     "data/heston_group/market.csv", "--correlations",
                     "data/heston_group/correlations.csv", "--paths", "4000"],
}


def _run(args, env_extra, cwd):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("cpu", sorted(OLDER_CPUS))
def test_results_have_the_same_bits_on_an_older_cpu(cpu, tmp_path):
    here = _run(["-c", PROBE], {}, tmp_path).stdout
    there = _run(["-c", PROBE], OLDER_CPUS[cpu], tmp_path).stdout
    if here == there:
        pytest.skip(f"this machine's NumPy and OpenBLAS already compute as the {cpu} ones: "
                    "nothing to emulate")
    root = DATA.parent
    for name, args in BOOKS.items():
        digests = []
        for env in ({}, OLDER_CPUS[cpu]):
            out = tmp_path / f"{name}_{len(digests)}.csv"
            done = _run(["-m", "mcgreeks.cli", "price", *args, "--quiet", "--out", str(out)],
                        env, root)
            assert done.returncode == 0, done.stderr
            digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
        assert digests[0] == digests[1], f"{name} book differs on {cpu}"
