"""The Monte Carlo loop: tiles of paths in parallel, per-tile moments merged in a fixed order.

Paths are numbered 0..N-1 and cut into tiles of ``TILE`` consecutive paths.  A tile is the unit of
vectorized work (the inner loop runs over its paths) and the unit of summation: each tile yields
the mean and centred sum of squares of every requested estimate.  Tiles are merged one after
another in path order into *segments* of ``SEGMENT`` paths, and segments one after another into
the total (Chan, Golub & LeVeque 1983).  Threads, blocks (tiles per parallel task), chunks (paths
per kernel call, which bound memory) and machines (a worker may simulate any run of whole
segments) only decide who computes a tile and when, never what it contains or the merge tree, so
the result is the same to the bit for any of them.  Random numbers are a pure function of (seed, underlying, path, draw) (see ``rng``).

A *slot* is one output estimate: (trade, quantity, estimator).  ``slots[j, g, e]`` holds its
index, or -1 when the caller does not want it; only wanted slots are computed.  A model's pricer
(``mcgreeks.pricers``) supplies the ``chunk`` function that fills one chunk's tiles (blocks of
them in parallel, ``for_blocks``); this module owns what every pricer shares: tiles, Brownian
increments, moments and their merging.
"""
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from mcgreeks import bridge, sobol
from mcgreeks._jit import kernel
from mcgreeks.rng import fill_normal_rows, ndtri

#: Paths per tile.  Part of the result's definition (it fixes the summation order), so it is a
#: constant, not a tuning knob; even, so Box-Muller and antithetic pairs never straddle tiles.  128
#: spreads a tile's fixed cost (about 200 ns: the calls, the slot loop, the moments' final
#: sums) to under 2 ns a path, while a tile of 252-step Heston paths still fits in L2.
TILE = 128
#: Paths per segment, the unit of distributed work and of the upper level of the merge tree.
SEGMENT = 1 << 14


#: Moments kept per tile and slot: mean and centred sum of squares of the estimate y, and of
#: its control x (when it has one), and their centred sum of cross products.
MEAN, M2, MEAN_X, M2_X, C_XY = range(5)
N_MOMENTS = 5
#: A merged state (a segment's, the run's) keeps, beside those moments, what the tail test
#: (``se_reliability``) reads from its tiles: their number, and the sum, sum of squares and
#: largest of their centred sums of squares of y.  Sums and a maximum merge exactly, in any
#: order, so the test is as reproducible as the estimate.
TILES, TILE_M2, TILE_M2_SQ, TILE_M2_MAX = range(5, 9)
N_STATE = 9


#: Partial sums a tile's sums are split into.  A sum over one accumulator is a chain of
#: dependent additions (about 1.3 ns a path, as much as a one-date payoff's whole work); eight,
#: path i in lane i % 8 and lanes added in a fixed tree, vectorize and keep the order fixed.
#: (The sums below spell the eight lanes out: LLVM keeps scalars in registers, not an array.)
LANES = 8


@kernel(inline=True)
def _centred_dot(a, ca, b, cb, m):
    """Σ (a[i] - ca)(b[i] - cb) over i < m (b = a, cb = ca: the centred sum of squares), in
    LANES partial sums added in a fixed order."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    whole = m - m % LANES
    for i in range(0, whole, LANES):
        s0 += (a[i] - ca) * (b[i] - cb)
        s1 += (a[i + 1] - ca) * (b[i + 1] - cb)
        s2 += (a[i + 2] - ca) * (b[i + 2] - cb)
        s3 += (a[i + 3] - ca) * (b[i + 3] - cb)
        s4 += (a[i + 4] - ca) * (b[i + 4] - cb)
        s5 += (a[i + 5] - ca) * (b[i + 5] - cb)
        s6 += (a[i + 6] - ca) * (b[i + 6] - cb)
        s7 += (a[i + 7] - ca) * (b[i + 7] - cb)
    rest = 0.0
    for i in range(whole, m):
        rest += (a[i] - ca) * (b[i] - cb)
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + rest


@kernel(inline=True)
def _sum(x, m):
    """Σ x[i] over i < m, in LANES partial sums added in a fixed order."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    whole = m - m % LANES
    for i in range(0, whole, LANES):
        s0 += x[i]
        s1 += x[i + 1]
        s2 += x[i + 2]
        s3 += x[i + 3]
        s4 += x[i + 4]
        s5 += x[i + 5]
        s6 += x[i + 6]
        s7 += x[i + 7]
    rest = 0.0
    for i in range(whole, m):
        rest += x[i]
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + rest


@kernel(inline=True)
def _pair_centred_dot(a, ca, b, cb, m):
    """``_centred_dot`` of the pair means: Σ_i (ā_i - ca)(b̄_i - cb) over i < m (m even), where
    ā_i = (a[2k] + a[2k + 1]) / 2 for both paths 2k, 2k + 1 of a pair, so 2 Σ_k over pairs; in
    four partial sums added in a fixed order."""
    s0 = s1 = s2 = s3 = 0.0
    n = m // 2
    whole = n - n % 4
    for k in range(0, whole, 4):
        i = 2 * k
        s0 += (0.5 * (a[i] + a[i + 1]) - ca) * (0.5 * (b[i] + b[i + 1]) - cb)
        s1 += (0.5 * (a[i + 2] + a[i + 3]) - ca) * (0.5 * (b[i + 2] + b[i + 3]) - cb)
        s2 += (0.5 * (a[i + 4] + a[i + 5]) - ca) * (0.5 * (b[i + 4] + b[i + 5]) - cb)
        s3 += (0.5 * (a[i + 6] + a[i + 7]) - ca) * (0.5 * (b[i + 6] + b[i + 7]) - cb)
    rest = 0.0
    for k in range(whole, n):
        i = 2 * k
        rest += (0.5 * (a[i] + a[i + 1]) - ca) * (0.5 * (b[i] + b[i + 1]) - cb)
    return 2.0 * (((s0 + s1) + (s2 + s3)) + rest)


@kernel(inline=True)
def _dot(a, ca, b, cb, m, pairs):
    """Centred sum of cross products of a[:m] and b[:m], or of their pair means (``pairs``)."""
    if pairs:
        return _pair_centred_dot(a, ca, b, cb, m)
    return _centred_dot(a, ca, b, cb, m)


@kernel(inline=True)
def tile_moments(x, m, pairs):
    """Mean and centred sum of squares of x[:m], two-pass for accuracy.  With ``pairs``
    (antithetic sampling, ``rng.antithetic``: paths 2k and 2k + 1 a pair, m even) the sum of
    squares is that of the pair means, each counted for both its paths, so that tiles merge
    as they do without pairs; ``estimate`` then counts pairs, not paths."""
    mean = _sum(x, m) / m
    return mean, _dot(x, mean, x, mean, m, pairs)


@kernel(inline=True)
def write_moments(y, x, m, with_control, pairs, out):
    """Write the tile moments of estimates y[:m] (and of their controls x[:m]) into out[:]
    (of pair means with ``pairs``, ``tile_moments``)."""
    out[MEAN], out[M2] = tile_moments(y, m, pairs)
    if with_control:
        out[MEAN_X], out[M2_X] = tile_moments(x, m, pairs)
        out[C_XY] = _dot(y, out[MEAN], x, out[MEAN_X], m, pairs)
    else:
        out[MEAN_X] = out[M2_X] = out[C_XY] = 0.0


@kernel(inline=True)
def add_to_total(g, e, y, x, m, control, estimator, weights, target, agg):
    """Add one trade's estimates y[:m] of quantity g by estimator e (and its control's x[:m]) to
    the per-path totals agg[target[g, 0]] (and agg[target[g, 1]] when it is >= 0) when e is the
    estimator its totals use (estimator[g], ``kernel_inputs.Totals``): weights[g] = (quantity,
    control coefficient, coefficient × the control's mean) gives quantity · y - coefficient · x
    + that constant, so the total's control part has mean zero and the total is a plain per-path
    sum."""
    if estimator[g] != e:
        return
    for side in range(2):
        row = target[g, side]
        if row < 0:
            continue
        for i in range(m):
            agg[row, i] += weights[g, 0] * y[i] + weights[g, 2]
        if control:
            for i in range(m):
                agg[row, i] -= weights[g, 1] * x[i]


@kernel
def store_moments(y, m, pairs, out):
    """``write_moments`` of an estimate without a control, called rather than inlined, for a
    pricer whose tiles cost milliseconds (Heston): one compiled copy instead of one per call
    site saves compile time."""
    out[MEAN], out[M2] = tile_moments(y, m, pairs)
    out[MEAN_X] = out[M2_X] = out[C_XY] = 0.0


#: ``add_to_total`` called rather than inlined (as ``store_moments``).
add_to_total_called = kernel(add_to_total.py_func)


@kernel(inline=True)
def brownian_tile(key0, key1, stream, path, m, grid, w):
    """W at the grid dates (years) for paths path..path+m-1 into w[k, i]: draw k of a path is the
    standard normal increment over (grid[k-1], grid[k]].  The draws go into w first, all rows in
    one call (``rng.fill_normal_rows``), and are summed in place."""
    fill_normal_rows(key0, key1, stream, np.uint64(path), w, np.int64(grid.size), np.int64(1),
                     np.int64(0), np.int64(1), np.int64(m))
    t_prev = 0.0
    for k in range(grid.size):
        sd = math.sqrt(grid[k] - t_prev)
        for i in range(m):
            w[k, i] = (w[k - 1, i] if k > 0 else 0.0) + sd * w[k, i]
        t_prev = grid[k]


@kernel(inline=True)
def sobol_tile(dirs, shifts, per_replicate, path, m, steps, weights, u, z, w):
    """W at the grid dates for paths path..path+m-1 from scrambled Sobol points, built by the
    Brownian bridge: path p is point p % per_replicate of randomization p // per_replicate
    (a tile never straddles two), dimension k of a point drives construction step k.
    ``steps`` = (order, left, right) and ``weights`` = (a, b, s) of ``bridge.plan``; u is (TILE,)
    and z (dates, TILE) scratch."""
    r = path // per_replicate
    index = path % per_replicate
    for k in range(z.shape[0]):
        sobol.fill_uniforms(dirs, shifts, r, index, k, u[:m])
        for i in range(m):
            z[k, i] = ndtri(u[i])
    bridge.build_tile(steps[0], steps[1], steps[2], weights[0], weights[1], weights[2], z, w, m)


_pool = None
_pool_lock = threading.Lock()


def _executor():
    """The process's worker threads (as many as numba may use), started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS,
                                       thread_name_prefix="mcgreeks")
        return _pool


#: Path-dates a parallel block holds at least (``block_tiles``): numba types a block's
#: arguments at every call with the GIL held (about 5 µs for the pricers' records), which shows
#: against a one-date book's 10 ns a path when blocks are of a few thousand paths.
MIN_BLOCK_PATH_DATES = 1 << 16


def block_tiles(tiles_per_block, n_tiles, dates):
    """Tiles per block for a book whose paths have ``dates`` grid dates: at least
    ``tiles_per_block`` and, up to two blocks per thread of the n_tiles, MIN_BLOCK_PATH_DATES
    path-dates.  The grain decides who computes a tile, never a bit of the result."""
    floor = -(-MIN_BLOCK_PATH_DATES // (TILE * max(dates, 1)))
    spread = max(1, n_tiles // (2 * numba.get_num_threads()))
    return max(tiles_per_block, min(floor, spread))


def for_blocks(block, n_tiles, tiles_per_block, head, tail):
    """Run ``block(*head, first_tile, end_tile, *tail)`` over consecutive blocks of
    ``tiles_per_block`` tiles covering tiles 0..n_tiles-1, on ``numba.get_num_threads()``
    threads, each taking the next block when it is free.

    ``block`` is a non-parallel kernel that releases the GIL (``_jit.kernel``: nogil) and writes
    only its own tiles' outputs, so the order blocks run in changes no bit.  Python threads
    instead of a ``prange`` loop: a parallel kernel costs numba's parfor passes and two more
    LLVM optimizations of everything it inlines (its gufunc and itself): without them the
    sample book's compile went from 74 to 36 CPU s (numba's pass timings), at no cost in speed
    (a block is milliseconds of work, the call a few microseconds).  Ctrl-C stops the threads
    after their current block."""
    n_blocks = -(-n_tiles // tiles_per_block)
    bounds = [(b * tiles_per_block, min(n_tiles, (b + 1) * tiles_per_block))
              for b in range(n_blocks)]
    threads = min(numba.get_num_threads(), n_blocks)
    if threads <= 1:
        for first, end in bounds:
            block(*head, first, end, *tail)
        return
    todo = iter(bounds)
    lock = threading.Lock()
    stop = threading.Event()

    def work():
        while not stop.is_set():
            with lock:
                nxt = next(todo, None)
            if nxt is None:
                return
            block(*head, nxt[0], nxt[1], *tail)

    futures = [_executor().submit(work) for _ in range(threads)]
    try:
        for f in futures:
            f.result()
    finally:
        stop.set()


def prefetched(produce, keys):
    """produce(k) for each k of ``keys`` in order, the next one computed on a worker thread
    while the caller works with the current one: for a sequential loop whose inputs do not
    depend on its own results (the dates' regressors of a Longstaff-Schwartz fit, whose
    backward induction is serial).  Two results are alive at once, so ``produce`` must not
    overwrite what it returned before.  In the calling thread alone when numba may use one
    thread.  The order of the results is the keys', whoever computes them."""
    keys = list(keys)
    if numba.get_num_threads() <= 1 or len(keys) < 2:
        for k in keys:
            yield produce(k)
        return
    nxt = _executor().submit(produce, keys[0])
    try:
        for i in range(len(keys)):
            current = nxt.result()
            nxt = _executor().submit(produce, keys[i + 1]) if i + 1 < len(keys) else None
            yield current
    finally:
        if nxt is not None and not nxt.cancel():
            nxt.exception()             # let a running one end before its inputs go


@kernel
def _merge(count, state, m, moments):
    """Fold one group of m paths with ``moments`` into (count, state) (pairwise update; the cross
    term likewise).  count is a 1-element array.  ``moments`` is a tile's (N_MOMENTS columns:
    it counts as one tile of the tail statistics) or a merged state (N_STATE columns)."""
    n_a = count[0]
    n_ab = n_a + m
    w = n_a * m / n_ab
    merged = moments.shape[1] == N_STATE
    for k in range(state.shape[0]):
        dy = moments[k, MEAN] - state[k, MEAN]
        dx = moments[k, MEAN_X] - state[k, MEAN_X]
        state[k, MEAN] += dy * m / n_ab
        state[k, MEAN_X] += dx * m / n_ab
        state[k, M2] += moments[k, M2] + dy * dy * w
        state[k, M2_X] += moments[k, M2_X] + dx * dx * w
        state[k, C_XY] += moments[k, C_XY] + dy * dx * w
        if merged:
            state[k, TILES] += moments[k, TILES]
            state[k, TILE_M2] += moments[k, TILE_M2]
            state[k, TILE_M2_SQ] += moments[k, TILE_M2_SQ]
            state[k, TILE_M2_MAX] = max(state[k, TILE_M2_MAX], moments[k, TILE_M2_MAX])
        else:
            tile_m2 = moments[k, M2]
            state[k, TILES] += 1.0
            state[k, TILE_M2] += tile_m2
            state[k, TILE_M2_SQ] += tile_m2 * tile_m2
            state[k, TILE_M2_MAX] = max(state[k, TILE_M2_MAX], tile_m2)
    count[0] = n_ab


@kernel
def merge_tiles(out, n_paths, count, state):
    """Fold tile moments (out[tile]) of n_paths consecutive paths into (count, state), in order."""
    for tile in range(out.shape[0]):
        # a float count, as merge_segments passes: one compiled _merge, same bits
        _merge(count, state, float(min(TILE, n_paths - tile * TILE)), out[tile])


def keys(key0, key1, stream):
    """The random-number keys as the kernels take them: (key0, key1, stream) as uint64 (``rng``:
    draw d of path p is a pure function of them, p and d)."""
    return np.uint64(key0), np.uint64(key1), np.uint64(stream)


#: Paths per kernel call by default.  Each call costs a few hundred microseconds of thread
#: hand-offs, as much as 65,536 one-date paths' work on two cores (measured: a European price
#: at 1 << 16 paths per call took 8.2 ns a path, 5.8 at 1 << 20); the model's ``call_paths``
#: and OUT_BYTES bound a call's time and memory.
CHUNK_PATHS = 1 << 20
#: Most bytes of tile moments (TILE paths × slots × N_MOMENTS doubles) one call writes.
OUT_BYTES = 1 << 24


def call_size(chunk_paths, n_slots):
    """Paths per kernel call: ``chunk_paths``, at most OUT_BYTES of tile moments for
    ``n_slots`` slots, in whole segments."""
    by_memory = OUT_BYTES // (8 * N_MOMENTS * max(n_slots, 1)) * TILE
    return max(SEGMENT, min(chunk_paths, by_memory) // SEGMENT * SEGMENT)


def simulate_segments(chunk, args, *, key0, key1, stream, first_path, n_paths, n_slots,
                      chunk_paths=CHUNK_PATHS, block_paths=1 << 12, segment=SEGMENT):
    """Moments of each segment of paths first_path..first_path+n_paths-1 (first_path a multiple
    of SEGMENT): (counts[n_segments], states[n_segments, slot, N_STATE]).  The work a worker does.
    ``segment`` (a power of two from TILE to SEGMENT) makes segments smaller, so that each of a
    randomized QMC run's replicates is a whole number of them."""
    if first_path % SEGMENT:
        raise ValueError(f"first_path has value {first_path}: must be a multiple of {SEGMENT}")
    n_segments = -(-n_paths // segment)
    counts = np.zeros((n_segments, 1))
    states = np.zeros((n_segments, n_slots, N_STATE))
    size = call_size(chunk_paths, n_slots)
    tiles_per_block = max(1, block_paths // TILE)
    for start in range(0, n_paths, size):
        n = min(size, n_paths - start)
        out = np.empty((-(-n // TILE), n_slots, N_MOMENTS))
        chunk(keys(key0, key1, stream), first_path + start, n, tiles_per_block, *args, out)
        for seg in range(-(-n // segment)):
            k = start // segment + seg
            tiles = out[seg * (segment // TILE):(seg + 1) * (segment // TILE)]
            merge_tiles(tiles, min(segment, n - seg * segment), counts[k], states[k])
    return counts, states


def merge_segments(counts, states):
    """Fold segment moments, in path order, into the total (count, state)."""
    count, state = np.zeros(1), np.zeros(states.shape[1:])
    for k in range(len(counts)):
        _merge(count, state, counts[k, 0], states[k])
    return int(count[0]), state


def run(chunk, args, *, key0, key1, stream, n_paths, n_slots, chunk_paths=CHUNK_PATHS,
        block_paths=1 << 12):
    """Simulate ``n_paths`` paths with a pricer's ``chunk`` kernel: (count, state[slot, N_STATE]).

    ``chunk(keys, path0, n, tiles_per_block, *args, out)`` fills out[tile, slot] with
    each tile's moments (``write_moments``).  ``chunk_paths`` bounds the paths per call
    (``call_size``) and ``block_paths`` sets the parallel grain; neither changes a bit of the
    result.
    """
    counts, states = simulate_segments(chunk, args, key0=key0, key1=key1, stream=stream,
                                       first_path=0, n_paths=n_paths, n_slots=n_slots,
                                       chunk_paths=chunk_paths, block_paths=block_paths)
    return merge_segments(counts, states)


def estimate_replicates(counts, states, control_mean, beta):
    """Mean and standard error per slot from R independent replicates of a randomized QMC run
    (counts[R], states[R, slot, N_STATE], each a replicate's merged moments): the mean of the replicate
    means, and the standard deviation of the replicate means over √R (Owen 1997; Glasserman
    2004, §5.4).  Where ``control_mean`` is not NaN, each replicate's mean is ȳ - β(x̄ - E[x])
    with the given ``beta`` (fitted beforehand, e.g. on a pilot, so the estimate stays unbiased).
    Also returns the variance reduction factor across replicates and ``beta``."""
    y = states[:, :, MEAN].copy()
    use = ~np.isnan(control_mean)
    controlled = y.copy()
    controlled[:, use] -= beta[use] * (states[:, use, MEAN_X] - control_mean[use])
    r = len(counts)
    se = controlled.std(axis=0, ddof=1) / np.sqrt(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(se > 0, y.std(axis=0, ddof=1) ** 2 / (se * se * r), 1.0)
    return controlled.mean(axis=0), se, reduction, np.where(use, beta, 0.0)


def estimate(count, state, control_mean=None, pairs=False):
    """Mean and standard error per slot from merged moments.

    With ``pairs`` (antithetic sampling), the moments are of pair means counted twice
    (``tile_moments``): the sample is the count / 2 pair means, whose sums of squares are half
    the state's, so the SE is that of the pair means (Glasserman 2004, §4.2).

    Where ``control_mean`` (per slot; NaN for none) gives E[x] of a slot's control, the estimate is
    the control-variate one, ȳ - β(x̄ - E[x]) with β = C_xy/M2_x fitted on the same paths, and its
    standard error that of the regression residual (Glasserman 2004, §4.1).  Also returns the
    variance reduction factor Var(y)/Var(residual) (1 without a control) and β.
    """
    mean, m2 = state[:, MEAN].copy(), state[:, M2].copy()
    beta = np.zeros(len(state))
    samples = count // 2 if pairs else count
    dof = np.full(len(state), max(samples - 1, 1), dtype=float)
    if control_mean is not None:
        use = ~np.isnan(control_mean) & (state[:, M2_X] > 0)
        beta[use] = state[use, C_XY] / state[use, M2_X]
        mean[use] -= beta[use] * (state[use, MEAN_X] - control_mean[use])
        m2[use] = np.maximum(m2[use] - beta[use] * state[use, C_XY], 0.0)
        dof[use] = max(samples - 2, 1)
    # pairs: Var(mean) = (m2 / 2) / (dof P) with P = count / 2 pair means, i.e. m2 / (dof count)
    se = np.sqrt(m2 / dof / max(count, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(m2 > 0, state[:, M2] / m2, 1.0)
    return mean, se, reduction, beta


def se_reliability(state):
    """How far each slot's standard error can be trusted, from its tiles (batch means of the
    variance): (relative error of the SE, the largest tile's share of the sum of squares).

    The squared SE is S / (n (n - 1)) with S the sum of squares; S is, up to the small spread
    of tile means, the sum of the tiles' own sums of squares M2_t, i.i.d. over tiles, so its
    relative standard error is sqrt(T var(M2_t)) / S, estimated from the T tiles' M2_t.  That
    is sqrt((kurtosis - 1) / n) for light tails (kurtosis of the per-path estimate, the
    classical error of a sample variance), and half of it is the relative error of the SE.
    With heavy tails (a tail index below 4: infinite kurtosis) a few tiles hold most of S and
    the statistic is large; with an infinite variance (index below 2) it stays of order 1
    however many paths are run, as does the largest tile's share.  Slots whose estimate is
    the same on every path (S = 0) get 0 and 0: their SE of 0 is exact.
    """
    tiles = state[:, TILES]
    total = state[:, TILE_M2]
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.maximum(state[:, TILE_M2_SQ] - total * total / tiles, 0.0) / (tiles - 1.0)
        rel = np.where((total > 0) & (tiles > 1), 0.5 * np.sqrt(tiles * spread) / total, 0.0)
        share = np.where(total > 0, state[:, TILE_M2_MAX] / total, 0.0)
    return rel, share
