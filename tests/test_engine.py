"""The engine's promises: same bits whatever the threads, blocks or chunks; errors that shrink
like 1/sqrt(N); exact merging of tile moments."""
import numba
import numpy as np
import pytest

from mcgreeks import engine, price_portfolio


def _numbers(table):
    return table.select_dtypes("number").to_numpy()


def test_bit_identical_across_threads_blocks_and_chunks(one_underlying):
    trades, market = one_underlying
    n = 50_003  # not a multiple of the tile: the last tile is partial
    reference = price_portfolio(trades, market, n_paths=n, seed=11)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = price_portfolio(trades, market, n_paths=n, seed=11)
    finally:
        numba.set_num_threads(saved)
    assert numba.config.NUMBA_NUM_THREADS >= 2, "the thread test needs two threads"
    small_blocks = price_portfolio(trades, market, n_paths=n, seed=11,
                                   chunk_paths=4096, block_paths=64)
    odd_chunks = price_portfolio(trades, market, n_paths=n, seed=11,
                                 chunk_paths=3 * engine.TILE * 100, block_paths=10 * engine.TILE)
    for other in (one_thread, small_blocks, odd_chunks):
        np.testing.assert_array_equal(_numbers(other), _numbers(reference))
        assert other.filter(like="method_").equals(reference.filter(like="method_"))


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


def test_merge_of_tile_moments_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=1000)
    n_tiles = -(-x.size // engine.TILE)
    out = np.empty((n_tiles, 1, 2))
    for t in range(n_tiles):
        part = x[t * engine.TILE:(t + 1) * engine.TILE]
        out[t, 0] = part.mean(), ((part - part.mean()) ** 2).sum()
    state = np.zeros((1, 3))
    engine.merge_tiles(out, x.size, state)
    assert state[0, 0] == x.size
    assert state[0, 1] == pytest.approx(x.mean(), rel=1e-14)
    assert state[0, 2] / (x.size - 1) == pytest.approx(x.var(ddof=1), rel=1e-12)
