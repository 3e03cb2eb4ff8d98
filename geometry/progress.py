"""What a long-running sampler reports as it goes, so a caller can show progress or stop it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One report: the ``sampler`` (``"sir"``, ``"smc"`` or ``"mcmc"``), the tempered target reached so far
    (``beta`` in [0, 1]; MCMC and SIR run at 1), log-volume ``evaluations`` spent, the ``step`` (SMC: tempering
    steps; MCMC: sweeps) and an ``ess`` (SMC: the last step's incremental-weight ESS; MCMC: NaN until the end)."""

    sampler: str
    beta: float
    evaluations: int
    step: int
    ess: float
