"""The engine's promises: same bits whatever the threads, blocks or chunks; errors that shrink
like 1/sqrt(N); exact merging of tile moments."""
import numpy as np
import pytest

from mc_checks import one_thread
from mcgreeks import engine, price_portfolio


def _numbers(table):
    return table.select_dtypes("number").to_numpy()


def test_bit_identical_across_threads_blocks_and_chunks(one_underlying):
    trades, market = one_underlying
    n = 50_003  # not a multiple of the tile: the last tile is partial
    reference = price_portfolio(trades, market, n_paths=n, seed=11)
    with one_thread():
        single = price_portfolio(trades, market, n_paths=n, seed=11)
    small_blocks = price_portfolio(trades, market, n_paths=n, seed=11,
                                   chunk_paths=4096, block_paths=64)
    odd_chunks = price_portfolio(trades, market, n_paths=n, seed=11,
                                 chunk_paths=3 * engine.TILE * 100, block_paths=10 * engine.TILE)
    for other in (single, small_blocks, odd_chunks):
        np.testing.assert_array_equal(_numbers(other), _numbers(reference))
        assert other.filter(like="method_").equals(reference.filter(like="method_"))


def test_a_call_takes_whole_segments_and_at_most_out_bytes_of_tile_moments():
    """``engine.call_size``: the paths of one kernel call, by default CHUNK_PATHS, fewer when its
    tile moments (TILE paths × slots × N_MOMENTS doubles) would pass OUT_BYTES, in whole
    segments and at least one (chunking changes no bit: the test above)."""
    assert engine.call_size(engine.CHUNK_PATHS, 2) == engine.CHUNK_PATHS
    assert engine.call_size(5_000, 1) == engine.SEGMENT
    for n_slots in (1, 7, 300, 5_000, 10**6):
        size = engine.call_size(engine.CHUNK_PATHS, n_slots)
        assert size % engine.SEGMENT == 0 and engine.SEGMENT <= size <= engine.CHUNK_PATHS
        out_bytes = size // engine.TILE * n_slots * engine.N_MOMENTS * 8
        assert size == engine.SEGMENT or out_bytes <= engine.OUT_BYTES
    assert engine.call_size(engine.CHUNK_PATHS, 300) < engine.CHUNK_PATHS


def test_seed_changes_the_numbers_and_only_the_seed(one_underlying):
    trades, market = one_underlying
    a = price_portfolio(trades, market, n_paths=4096, seed=1)
    b = price_portfolio(trades, market, n_paths=4096, seed=1)
    c = price_portfolio(trades, market, n_paths=4096, seed=2)
    np.testing.assert_array_equal(_numbers(a), _numbers(b))
    assert not np.array_equal(a["price"], c["price"])


def test_trade_order_does_not_change_a_trade(one_underlying):
    """Paths belong to the underlying, not to the row order of the trades table."""
    trades, market = one_underlying
    a = price_portfolio(trades, market, n_paths=8192, seed=3)
    b = price_portfolio(trades.iloc[::-1], market, n_paths=8192, seed=3)
    np.testing.assert_array_equal(_numbers(a), _numbers(b.loc[a.index]))


def test_standard_errors_shrink_like_one_over_sqrt_n(one_underlying):
    trades, market = one_underlying
    small = price_portfolio(trades, market, n_paths=40_000, seed=5, method="lr")
    large = price_portfolio(trades, market, n_paths=160_000, seed=5, method="lr")
    for column in ("price_se", "delta_se", "gamma_se", "vega_se", "rho_se", "theta_se"):
        ratio = small[column] / large[column]
        # sqrt(4) = 2; the SE of an SE estimate at these N is a few per cent
        assert ratio.between(1.8, 2.2).all(), (column, ratio.tolist())


def _merged_state(y, x=None, pairs=False):
    """(state, count) of per-path estimates y (with controls x), merged tile by tile as the
    engine does (of antithetic pairs' means with ``pairs``)."""
    n_tiles = -(-y.size // engine.TILE)
    out = np.empty((n_tiles, 1, engine.N_MOMENTS))
    for t in range(n_tiles):
        sl = slice(t * engine.TILE, (t + 1) * engine.TILE)
        engine.write_moments(y[sl], y[sl] if x is None else x[sl], y[sl].size, x is not None,
                             pairs, out[t, 0])
    state, count = np.zeros((1, engine.N_STATE)), np.zeros(1)
    engine.merge_tiles(out, y.size, count, state)
    return state, count


def test_merge_of_tile_moments_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=1000)
    y = 2.0 * x + rng.normal(size=x.size)          # a correlated second series
    state, count = _merged_state(y, x)
    assert count[0] == x.size
    assert state[0, engine.MEAN] == pytest.approx(y.mean(), rel=1e-14)
    assert state[0, engine.MEAN_X] == pytest.approx(x.mean(), rel=1e-14)
    assert state[0, engine.M2] / (x.size - 1) == pytest.approx(y.var(ddof=1), rel=1e-12)
    assert state[0, engine.M2_X] / (x.size - 1) == pytest.approx(x.var(ddof=1), rel=1e-12)
    assert state[0, engine.C_XY] / (x.size - 1) == pytest.approx(np.cov(y, x)[0, 1], rel=1e-12)


def test_control_variate_estimate_is_the_regression_estimate():
    """ȳ - β(x̄ - E[x]) with β the least-squares slope, and the residual standard error."""
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 1.0, size=5000)
    y = 3.0 * x + rng.normal(size=x.size)
    state = np.array([[y.mean(), ((y - y.mean())**2).sum(), x.mean(), ((x - x.mean())**2).sum(),
                       ((y - y.mean()) * (x - x.mean())).sum()]])
    mean, se, reduction, beta = engine.estimate(x.size, state, np.array([1.0]))
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    assert beta[0] == pytest.approx(slope, rel=1e-12)
    assert mean[0] == pytest.approx(intercept + slope * 1.0, rel=1e-12)
    assert se[0] == pytest.approx(np.sqrt((residual**2).sum() / (x.size - 2) / x.size), rel=1e-12)
    assert reduction[0] == pytest.approx(y.var() / residual.var(), rel=1e-9)




@pytest.mark.parametrize("with_control", [False, True])
def test_antithetic_pairs_estimate_is_that_of_the_pair_means(with_control):
    """With pairs, the mean is the paths' and the SE (plain, or of the control-variate
    regression residual) that of the n/2 pair means, merged over tiles (the last one partial)
    as the engine merges them (Glasserman 2004, §4.2)."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(7 * engine.TILE + 46) // 2)
    w = np.repeat(z, 2) * np.tile([1.0, -1.0], z.size)       # reflected pairs
    y = np.exp(0.3 * w) + 0.05 * rng.normal(size=w.size)
    x = w * w if with_control else None           # even: the odd part cancels in a pair
    state, count = _merged_state(y, x, pairs=True)
    mean, se, _, beta = engine.estimate(count[0], state, np.array([1.0]) if with_control
                                        else None, pairs=True)
    py = y.reshape(-1, 2).mean(axis=1)
    assert state[0, engine.MEAN] == pytest.approx(y.mean(), rel=1e-13)
    if with_control:
        px = x.reshape(-1, 2).mean(axis=1)
        slope, intercept = np.polyfit(px, py, 1)
        residual = py - (slope * px + intercept)
        assert beta[0] == pytest.approx(slope, rel=1e-10)
        assert mean[0] == pytest.approx(intercept + slope * 1.0, rel=1e-10)
        assert se[0] == pytest.approx(np.sqrt((residual ** 2).sum() / (py.size - 2) / py.size),
                                      rel=1e-10)
    else:
        assert se[0] == pytest.approx(py.std(ddof=1) / np.sqrt(py.size), rel=1e-12)
        plain = engine.estimate(count[0], _merged_state(y)[0])[1][0]
        assert se[0] < 0.5 * plain      # the reflection cancels exp's odd part


def test_tail_statistics_merge_exactly_across_segments():
    """Tiles merged into two segments, then the segments, give the tail columns of one pass."""
    y = np.random.default_rng(3).standard_t(3, size=40 * engine.TILE)
    whole = _merged_state(y)[0]
    half = y.size // 2
    parts = [_merged_state(y[:half])[0], _merged_state(y[half:])[0]]
    count, state = engine.merge_segments(np.array([[half], [y.size - half]], dtype=float),
                                         np.stack(parts))
    tiles = y.reshape(-1, engine.TILE)
    m2 = ((tiles - tiles.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    assert state[0, engine.TILES] == whole[0, engine.TILES] == tiles.shape[0]
    assert state[0, engine.TILE_M2] == pytest.approx(m2.sum(), rel=1e-13)
    assert state[0, engine.TILE_M2_SQ] == pytest.approx((m2 ** 2).sum(), rel=1e-13)
    assert state[0, engine.TILE_M2_MAX] == pytest.approx(m2.max(), rel=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_se_reliability_is_the_error_of_a_sample_variance(seed):
    """Normal estimates: the SE's relative error is sqrt(2 / n) / 2 (kurtosis 3), within the
    statistic's own noise; uniform ones (kurtosis 9/5): sqrt(0.8 / n) / 2."""
    rng = np.random.default_rng(seed)
    n = 2000 * engine.TILE
    for draw, kurtosis in ((rng.normal(size=n), 3.0), (rng.uniform(size=n), 1.8)):
        rel, share = engine.se_reliability(_merged_state(draw)[0])
        assert rel[0] == pytest.approx(0.5 * np.sqrt((kurtosis - 1.0) / n), rel=0.1)
        assert share[0] < 3.0 / 2000


def test_se_reliability_flags_infinite_variance():
    """Pareto tails of index 1.5 (infinite variance): the SE's relative error stays of order
    one at any n, and one tile holds a large share of the sum of squares."""
    rng = np.random.default_rng(11)
    heavy = rng.pareto(1.5, size=2000 * engine.TILE)
    rel, share = engine.se_reliability(_merged_state(heavy)[0])
    assert rel[0] > 0.2 and share[0] > 0.05


def test_se_reliability_of_a_constant_estimate_is_exact():
    rel, share = engine.se_reliability(_merged_state(np.full(10 * engine.TILE, 2.5))[0])
    assert rel[0] == 0.0 and share[0] == 0.0


def test_prefetched_yields_in_order_on_one_thread_or_two_and_passes_errors_on():
    """``engine.prefetched`` computes the next item on a worker thread (the exercise fits'
    dates): the items come in the keys' order, the same with one thread, and an error in one
    reaches the caller at that item."""
    keys = list(range(40, 0, -3))
    made = list(engine.prefetched(lambda k: (k, np.full(3, float(k))), keys))
    assert [k for k, _ in made] == keys
    assert all(np.array_equal(a, np.full(3, float(k))) for k, a in made)
    with one_thread():
        assert [k for k, _ in engine.prefetched(lambda k: (k, None), keys)] == keys

    def produce(k):
        if k == 22:
            raise ValueError("date 22")
        return k

    seen = []
    with pytest.raises(ValueError, match="date 22"):
        for k in engine.prefetched(produce, keys):
            seen.append(k)
    assert seen == keys[:keys.index(22)]
