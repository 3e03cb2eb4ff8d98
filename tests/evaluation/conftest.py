"""Dense references for the blocked metrics: the docstrings' definitions written on whole distance matrices."""

import torch


def dense_squared_distances(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)


def dense_radii(points, k, masses=None):
    """Squared k-NN radius of each point in its own set; with masses, the smallest whose ball holds mass k + 1."""
    distances, order = dense_squared_distances(points, points).sort(dim=1)
    if masses is None:
        return distances[:, k]
    first = (masses[order].cumsum(dim=1) >= (k + 1) * (1 - 1e-9)).to(torch.int8).argmax(dim=1)
    return distances.gather(1, first[:, None]).squeeze(1)


def gaussians(n, m, features, *, shift=0.0, seed=0, dtype=torch.float64):
    """``(real, generated)``: ``n`` and ``m`` standard normal rows, the generated ones shifted by ``shift``."""
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n, features, generator=generator, dtype=dtype)
    return real, torch.randn(m, features, generator=generator, dtype=dtype) + shift
