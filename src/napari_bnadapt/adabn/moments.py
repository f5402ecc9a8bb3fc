"""Exact pooling of per-channel mean and variance over batches (Chan et al.).

Per batch only ``(count, mean, biased variance)`` per channel is kept; merging is done in
float64 with Chan's parallel formula, which is associative: the pooled result equals the
population mean and variance of every value seen, whatever the batch size or order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (M2) per channel, in float64."""

    count: float
    mean: torch.Tensor
    m2: torch.Tensor

    @classmethod
    def of_batch(cls, x: torch.Tensor) -> Moments:
        """Moments of a ``(N, C, *spatial)`` tensor per channel, pooled over N and space."""
        dims = [0, *range(2, x.ndim)]
        var, mean = torch.var_mean(x.float(), dim=dims, unbiased=False)
        count = x.numel() / x.shape[1]
        return cls.from_biased(count, mean, var)

    @classmethod
    def from_biased(cls, count: float, mean: torch.Tensor, var: torch.Tensor) -> Moments:
        mean64 = mean.detach().to("cpu", torch.float64)
        return cls(float(count), mean64, var.detach().to("cpu", torch.float64) * count)

    def merge(self, other: Moments) -> Moments:
        """Chan's merge: the moments of the union of both samples."""
        n = self.count + other.count
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return Moments(n, mean, m2)

    @property
    def var_biased(self) -> torch.Tensor:
        return self.m2 / self.count

    @property
    def var_unbiased(self) -> torch.Tensor:
        """The variance PyTorch stores in ``running_var`` (unbiased)."""
        return self.m2 / max(self.count - 1.0, 1.0)


def pool(batches: list[Moments]) -> Moments:
    """Merge a list of per-batch moments (empty list → ValueError)."""
    if not batches:
        raise ValueError("no batches to pool")
    total = batches[0]
    for batch in batches[1:]:
        total = total.merge(batch)
    return total
