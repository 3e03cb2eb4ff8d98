"""What every log-volume method returns: the values, their error estimate, and how they were computed."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gendebias.geometry.memory import Chunking


@dataclass(frozen=True)
class LogVolumeEstimate:
    """Per-latent log-volumes from one method, with an error estimate for each.

    Attributes:
        log_volume: ``(N,)`` float64; ``-inf`` where the (top-k) Jacobian is rank deficient.
        error: ``(N,)`` float64 error estimate in nats, whose meaning depends on the method: ``exact`` in fp32
            reports 0 (rounding only); in tf32/bf16 NaN (not estimated: ``benchmarks/`` measures it);
            ``randomized`` the change over the last power iteration (the estimate is a lower bound that
            increases to the truth); ``projection`` the standard deviation of its random error.
        method: ``"exact"``, ``"randomized"`` or ``"projection"``.
        precision: the precision the products really ran in (``tf32`` reads ``fp32`` off Ampere GPUs).
        top_k: the number of singular values summed, or None for all ``d``.
        products: Jacobian-vector plus vector-Jacobian products per latent.
        chunking: latents and tangents per chunk in use at the end (after any out-of-memory halving).
    """

    log_volume: Tensor
    error: Tensor
    method: str
    precision: str
    top_k: int | None
    products: int
    chunking: Chunking
