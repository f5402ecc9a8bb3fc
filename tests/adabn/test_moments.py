import numpy as np
import torch

from napari_bnadapt.adabn.moments import Moments, pool


def test_chan_merge_equals_population_statistics_for_uneven_batches():
    rng = np.random.default_rng(0)
    # Batches with very different means: the case where averaging variances fails.
    parts = [
        rng.normal(loc, 1.0 + i, size=(n, 3, 5, 5))
        for i, (loc, n) in enumerate([(0, 2), (50, 7), (-20, 1)])
    ]
    pooled = pool([Moments.of_batch(torch.from_numpy(p).float()) for p in parts])
    everything = np.concatenate(parts).transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(pooled.mean.numpy(), everything.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(pooled.var_biased.numpy(), everything.var(axis=1), rtol=1e-5)
    np.testing.assert_allclose(
        pooled.var_unbiased.numpy(), everything.var(axis=1, ddof=1), rtol=1e-5
    )
    assert pooled.count == everything.shape[1]


def test_merge_is_order_independent():
    rng = np.random.default_rng(1)
    batches = [
        Moments.of_batch(torch.from_numpy(rng.normal(size=(2, 4, 3, 3))).float()) for _ in range(5)
    ]
    forward, backward = pool(batches), pool(batches[::-1])
    torch.testing.assert_close(forward.mean, backward.mean)
    torch.testing.assert_close(forward.m2, backward.m2)
