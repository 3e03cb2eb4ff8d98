"""The log-volume histogram of a pool of proposals, with the importance weights laid over it.

Drawing ``z ~ p`` and weighting by ``vol^rho`` (MaGNET, Humayun, Balestriero and Baraniuk, ICLR 2022, §3.2) moves
the distribution of ``log_volume(z)`` from its histogram under the prior to the same histogram weighted by the
normalised weights ``w_i``. Both are drawn as densities, so a reader sees how far the target sits in the proposal's
tail, and the legend gives each weighting's effective sample size ``1 / sum_i w_i^2``: a weighted histogram that
rests on a handful of latents says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._figure import new_figure, save
from gendebias.geometry.weights import effective_sample_size


def log_volume_histogram(log_volumes: Tensor, weightings: Mapping[str, Tensor], path: str | Path, *,
                         bins: int = 60, title: str = "log-volumes of the proposals and their weights") -> Path:
    """Write the density histogram of ``log_volumes`` ``(N,)`` of prior draws, and for each ``{name: log_weights}``
    (``(N,)`` log importance weights of the same draws, any normalisation, e.g.
    ``log_weights(log_volumes, rho=1.0)``) the same histogram weighted by the normalised weights, its ESS in the
    legend. Latents with ``log_volume = -inf`` (rank-deficient) cannot be placed on the axis: their count is said in
    the legend and their weight left out. Returns the path."""
    volumes = torch.as_tensor(log_volumes).detach().to(torch.float64).cpu().flatten()
    finite = torch.isfinite(volumes)
    if int(finite.sum()) < 2:
        raise InvalidArgumentError("log_volumes needs at least two finite values to draw a histogram")
    edges = np.histogram_bin_edges(volumes[finite].numpy(), bins=bins)
    figure = new_figure(6.4, 4.2)
    axis = figure.subplots()
    dropped = f", {int((~finite).sum())} at -inf left out" if not bool(finite.all()) else ""
    axis.hist(volumes[finite].numpy(), bins=edges, density=True, color="0.6",
              label=f"prior draws (n = {volumes.numel():,}{dropped})")
    for name, values in weightings.items():
        weights = torch.as_tensor(values).detach().to(torch.float64).cpu().flatten()
        if weights.shape != volumes.shape:
            raise InvalidArgumentError(f"log weights {name!r} have shape {tuple(weights.shape)}, the log-volumes "
                                       f"{tuple(volumes.shape)}")
        ess = effective_sample_size(weights)
        normalised = torch.softmax(weights, dim=0)[finite].numpy()
        axis.hist(volumes[finite].numpy(), bins=edges, weights=normalised, density=True, histtype="step",
                  linewidth=1.6, label=f"{name} (ESS {ess:,.1f} of {volumes.numel():,})")
    axis.set_xlabel("log-volume  (1/2 log det J^T J, nats)")
    axis.set_ylabel("density")
    axis.legend(fontsize=8)
    return save(figure, path, title=title)
