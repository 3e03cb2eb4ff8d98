"""Effective sample sizes of what the samplers return, estimated from their own output.

A sampler's worth is the variance of the estimates it gives, so every estimate here is ``variance of one exact
draw / variance of the sampler's mean``, for a set of test statistics: the latent coordinates (at most
:data:`STATISTICS` of them) and the log-volume. The per-statistic ratios are averaged as variance ratios
(``count / mean(count / ess_f)``), so one slowly mixing statistic pulls the figure down.

* :func:`resampled_ess` — SIR: ``n`` draws from a pool whose normalised weights have Kish ESS ``E`` behave like
  ``1 / (1/n + 1/E)`` independent draws (the pool's own error plus the draws' multinomial noise).
* :func:`genealogy_ess` — SMC: particles that share an ancestor are correlated. The variance of the population mean
  is estimated from the sums of deviations within each family (the Chan & Lai estimator, Ann. Statist. 2013, with
  families taken a fixed number of resampling steps back as in Olsson & Douc, Bernoulli 2019, since the moves in
  between erase older correlation); the largest variance over the lags tried is kept.
* :func:`island_ess` — SMC run as independent islands: the spread of the islands' means estimates the variance of
  the population mean directly, and sees what no genealogy can: a population whose every family drifted the same
  way because its moves did not mix (the island particle model of Vergé, Dubarry, Del Moral & Moulines,
  Statistics and Computing 2015).
* :func:`multichain_ess` — MCMC: the multi-chain autocorrelation estimate with Geyer's initial positive sequence
  (Vehtari, Gelman, Simpson, Carpenter & Bürkner, Bayesian Analysis 2021, without the rank normalisation).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

STATISTICS = 64


def statistics(latents: Tensor, log_volumes: Tensor | None = None) -> Tensor:
    """``(N, F)`` float64 test statistics: up to :data:`STATISTICS` evenly spaced latent coordinates, and the
    log-volume (non-finite values replaced by the smallest finite one)."""
    flat = latents.flatten(1).to(torch.float64).cpu()
    if flat.shape[1] > STATISTICS:
        flat = flat[:, torch.linspace(0, flat.shape[1] - 1, STATISTICS).round().long()]
    if log_volumes is None:
        return flat
    return torch.cat([flat, finite_log_volumes(log_volumes)[:, None]], dim=1)


def finite_log_volumes(log_volumes: Tensor) -> Tensor:
    """``(N,)`` float64 on the CPU, ``-inf`` (rank-deficient latents) replaced by the smallest finite value (0 if
    none), so correlations and variances of log-volumes stay defined."""
    values = log_volumes.to(torch.float64).cpu()
    finite = torch.isfinite(values)
    return torch.where(finite, values, values[finite].min() if bool(finite.any()) else 0.0)


def resampled_ess(pool_ess: float, n: int) -> float:
    """ESS of ``n`` latents resampled from a pool whose weights have Kish ESS ``pool_ess``."""
    if n <= 0 or pool_ess <= 0:
        return 0.0
    return 1.0 / (1.0 / n + 1.0 / pool_ess)


def _deviations(values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``values`` ``(N, F)`` minus their means, each statistic's sample variance ``s_f^2`` and whether it is
    positive (a constant statistic says nothing about the ESS)."""
    centred = values - values.mean(0)
    spread = (centred**2).sum(0) / (values.shape[0] - 1)
    return centred, spread, spread > 0


def genealogy_ess(values: Tensor, ancestors: list[Tensor]) -> float:
    """ESS of an equally weighted population from its genealogy.

    Args:
        values: ``(N, F)`` test statistics of the final particles (:func:`statistics`).
        ancestors: ``ancestors[j]`` ``(N,)`` int64 is each final particle's ancestor ``j + 1`` resampling steps
            back (its family at lag ``j + 1``); empty when the population was never resampled (ESS = N).

    Returns ``N / max_lag mean_f (N Var_hat(mean_f) / s_f^2)``, capped at ``N``; lags whose families number
    fewer than ``sqrt(N)`` are skipped, as their variance estimate degenerates (one family gives 0).
    """
    count = values.shape[0]
    if count < 2 or not ancestors:
        return float(count)
    centred, spread, usable = _deviations(values)
    if not bool(usable.any()):
        return float(count)
    worst = 1.0
    for family in ancestors:
        labels = torch.unique(family.cpu(), return_inverse=True)[1]
        families = int(labels.max()) + 1
        if families < math.sqrt(count):
            break
        sums = torch.zeros(families, values.shape[1], dtype=torch.float64).index_add_(0, labels, centred)
        design_effect = (sums[:, usable] ** 2).sum(0) / count / spread[usable]
        worst = max(worst, float(design_effect.mean()))
    return count / worst


def island_ess(values: Tensor, islands: Tensor) -> float:
    """ESS of an equally weighted population made of independent islands (sub-populations that never exchange
    particles), from the spread of the islands' means.

    Args:
        values: ``(N, F)`` test statistics (:func:`statistics`).
        islands: ``(N,)`` int64 island of each particle; fewer than 2 islands give ``N``.

    Returns ``N / mean_f (Var_hat(mean_f) / (s_f^2 / N))``, capped at ``N``, with ``Var_hat(mean_f) =
    sum_k w_k^2 (m_kf - m_f)^2 K / (K - 1)`` over the ``K`` islands of shares ``w_k`` and means ``m_kf``.
    """
    count = values.shape[0]
    labels = torch.unique(islands.cpu(), return_inverse=True)[1]
    groups = int(labels.max()) + 1 if count else 0
    if count < 2 or groups < 2:
        return float(count)
    centred, spread, usable = _deviations(values)
    if not bool(usable.any()):
        return float(count)
    sums = torch.zeros(groups, values.shape[1], dtype=torch.float64).index_add_(0, labels, centred)
    # (share_k * (island mean_k - overall mean))^2 = (sum of deviations in k / N)^2
    variance = (sums[:, usable] / count).pow(2).sum(0) * groups / (groups - 1)
    design_effect = variance / (spread[usable] / count)
    return min(float(count), count / float(design_effect.mean()))


def multichain_ess(traces: Tensor) -> float:
    """ESS of the draws of ``C`` chains, ``traces`` ``(T, C, F)`` (time, chain, statistic), float64.

    For each statistic: ``rho_t = 1 - (W - mean_c autocov_c(t)) / var_plus`` with ``W`` the mean within-chain
    variance and ``var_plus = (T - 1)/T W + B/T``; ``tau = -1 + 2 sum`` of Geyer's initial positive pair sums;
    ``ESS_f = T C / tau``. Combined over statistics as variance ratios, capped at ``T C``. Chains shorter than
    their autocorrelation time cannot show it, so the ESS is also capped by the chains taken as independent
    replicates, ``C var_plus / B`` (the variance of the chain means), combined the same way.
    """
    length, chains, _ = traces.shape
    total = length * chains
    if length < 4:
        return float(total)
    traces = traces.to(torch.float64)
    centred = traces - traces.mean(0)
    spectrum = torch.fft.rfft(centred, n=2 * length, dim=0)
    autocovariance = torch.fft.irfft(spectrum * spectrum.conj(), n=2 * length, dim=0)[:length] / length
    within = traces.var(dim=0).mean(0)  # (F,)
    between = traces.mean(0).var(dim=0) if chains > 1 else torch.zeros_like(within)
    var_plus = (length - 1) / length * within + between
    usable = var_plus > 0
    if not bool(usable.any()):
        return float(total)
    rho = 1 - (within - autocovariance.mean(1)) / var_plus.clamp_min(1e-300)  # (T, F)
    taus = []
    for f in torch.nonzero(usable).flatten().tolist():
        tau = -1.0
        for k in range(0, length - 1, 2):
            pair = float(rho[k, f] + rho[k + 1, f])
            if pair <= 0:
                break
            tau += 2 * pair
        taus.append(max(tau, 1.0 / math.log10(max(total, 10))))
    ess = min(float(total), total / (sum(taus) / len(taus)))
    if chains > 1:  # the chains as independent replicates: honest where they are too short to show their tau
        replicated = chains * var_plus[usable] / between[usable].clamp_min(1e-300)
        ess = min(ess, float(replicated.numel() / (1.0 / replicated).sum()))
    return ess
