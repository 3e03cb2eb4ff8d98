"""What the SDK returns: frozen dataclasses of numpy arrays and plain Python values (never protobuf messages).

Arrays are fresh, writable numpy arrays owned by the result. Dataclasses holding arrays compare by identity
(``eq=False``): compare their fields with ``np.array_equal`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GeneratorInfo:
    """What a client needs to know to call a served generator (``list_generators`` / ``get_generator``).

    Attributes:
        generator_id: the id to pass to every other call, e.g. ``"digits-gan"``.
        description: one human-readable line.
        kind: ``"gan"`` (generator) or ``"vae"`` (decoder).
        latent_shape: shape of one latent; latents are sent as ``(N, *latent_shape)``.
        output_shape: shape of one output, e.g. ``(1, 8, 8)``.
        prior: latent prior name: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
        prior_parameters: the prior's parameters, e.g. ``{"low": -1.0, "high": 1.0}``.
        piecewise_affine: every latent-dependent operation is affine or piecewise linear (detected, not assumed).
        smooth_operations: names of the smooth operations found otherwise (e.g. ``("tanh",)``).
        classes: number of classes of a conditional generator, None when unconditional.
        frozen_noise: the generator's noise inputs were fixed.
        dtype: the generator's floating dtype, ``"float32"`` or ``"float64"``.
    """

    generator_id: str
    description: str
    kind: str
    latent_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    prior: str
    prior_parameters: dict[str, float]
    piecewise_affine: bool
    smooth_operations: tuple[str, ...]
    classes: int | None
    frozen_noise: bool
    dtype: str


@dataclass(frozen=True, eq=False)
class LogVolumes:
    """Result of ``log_volumes``: per-latent ``1/2 log det(J^T J)``, in input order.

    Attributes:
        log_volumes: ``(N,)`` float64; ``-inf`` where the (top-k) Jacobian is rank deficient.
        singular_values: ``(N, k)`` float64, descending, when asked for; else None.
        tile_codes: ``(N,)`` int64 tile codes, when asked for; else None.
        errors: ``(N,)`` float64 error estimate in nats: 0 for exact fp32, NaN where not estimated (exact in
            tf32/bf16), the last power iteration's change (randomized), the standard deviation (projection).
        method: ``"exact"``, ``"randomized"`` or ``"projection"``, as run.
        precision: the precision the Jacobian-vector products really ran in.
        products: Jacobian-vector plus vector-Jacobian products per latent.
    """

    log_volumes: np.ndarray
    singular_values: np.ndarray | None = None
    tile_codes: np.ndarray | None = None
    errors: np.ndarray | None = None
    method: str = "exact"
    precision: str = "fp32"
    products: int = 0


@dataclass(frozen=True, eq=False)
class Reweighted:
    """Result of ``reweight``: normalised log importance weights (``logsumexp(log_weights) == 0``).

    Attributes:
        log_weights: ``(N,)`` float64, in input order.
        log_volumes: ``(N,)`` float64, the log-volumes the weights were computed from.
        ess: effective sample size ``1 / sum w_i^2``, between 1 and N; small means a degenerate reweighting.
        max_weight: the largest normalised weight; near 1 means one latent carries all the mass.
    """

    log_weights: np.ndarray
    log_volumes: np.ndarray
    ess: float
    max_weight: float


@dataclass(frozen=True, eq=False)
class Resampled:
    """Result of ``resample``: ``n`` debiased latents drawn from a weighted pool of prior proposals.

    Attributes:
        latents: ``(n, *latent_shape)`` in the generator's dtype.
        log_weights: ``(n,)`` float64 normalised pool log-weights of the drawn latents (SIR; None for SMC/MCMC).
        indices: ``(n,)`` int64 indices into the pool (SIR; None for SMC/MCMC).
        outputs: ``(n, *output_shape)`` generator outputs when ``return_outputs=True``; else None.
        ess: effective sample size of the returned latents (SIR: from the pool's weights; SMC: from the particles'
            genealogy; MCMC: from the chains' autocorrelation).
        max_weight: the largest normalised pool weight (SIR; NaN otherwise).
        distinct: number of distinct pool latents among the ``n`` drawn.
        proposals: pool size.
        evaluations: log-volume evaluations spent.
        scheme, sampler: what drew the latents (``"multinomial"``, ``"sir"``, ...).
        seed: the seed used (the server reports the one it drew when none was given); same seed, same latents.
        acceptance_rate: accepted share of the pool for ``scheme="rejection"``; NaN otherwise.
        stopped: ``"done"``, or the budget that stopped SMC/MCMC early (fewer than ``n`` latents may come back).
        beta: the tempered target the latents follow, ``base * volume^(beta * rho)``; 1 unless a budget stopped SMC.
        choice: why this sampler ran: ``"requested"``, or what ``auto`` measured.
        warnings: what to know before trusting the sample (also raised as ``UserWarning``).
        pool_ess: SIR: the Kish ESS of the pool's weights; NaN otherwise.
        diagnostics: SMC's tempering ``schedule``, ``ess_history``, ``acceptance_rates`` and ``log_normalizer``;
            MCMC's ``acceptance_rates`` and ``autocorrelation_ess``.
    """

    latents: np.ndarray
    log_weights: np.ndarray | None
    indices: np.ndarray | None
    outputs: np.ndarray | None
    ess: float
    max_weight: float
    distinct: int
    proposals: int
    evaluations: int
    scheme: str
    sampler: str
    seed: int
    acceptance_rate: float
    stopped: str = "done"
    beta: float = 1.0
    choice: str = "requested"
    warnings: tuple[str, ...] = ()
    pool_ess: float = math.nan
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The scalar diagnostics as a plain dict (for logs and JSON)."""
        return {
            "n": int(self.latents.shape[0]), "proposals": self.proposals, "ess": self.ess,
            "max_weight": self.max_weight, "distinct": self.distinct, "evaluations": self.evaluations,
            "scheme": self.scheme, "sampler": self.sampler, "seed": self.seed, "acceptance_rate": self.acceptance_rate,
            "stopped": self.stopped, "beta": self.beta, "choice": self.choice, "warnings": list(self.warnings),
            "pool_ess": self.pool_ess,
        }


@dataclass(frozen=True)
class ResampleProgress:
    """How far a server-side sampler has got: the ``sampler`` running, the tempered target ``beta`` reached,
    log-volume ``evaluations`` spent, its ``step`` (SMC: tempering steps; MCMC: states kept per chain) and the
    ``seconds`` since the call arrived."""

    sampler: str
    beta: float
    evaluations: int
    step: int
    seconds: float
