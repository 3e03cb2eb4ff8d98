"""gpCN proposals around a Gaussian reference, of all the latent coordinates or of a random block of them.

The generalised preconditioned Crank–Nicolson proposal (gpCN; Rudolf & Sprungk, "On a generalization of the
preconditioned Crank–Nicolson Metropolis algorithm", Found. Comput. Math. 2018, arXiv:1504.03461) around a Gaussian
reference ``g = N(m, C)``:

    z' = m + sqrt(1 - s^2) (z - m) + s L xi,   L L^T = C,  xi ~ N(0, I)

is reversible for ``g``, so a Metropolis–Hastings move with it accepts with ``[pi(z') / g(z')] / [pi(z) / g(z)]``.

**Block moves.** A block proposal changes only ``k`` coordinates ``B``, drawn at random for each particle, with the
same formula applied to the reference's conditional ``g(z_B | z_rest)`` (mean
``m_B - Q_BB^{-1} Q_{B,rest} (z_rest - m_rest)``, covariance ``Q_BB^{-1}``, ``Q = C^{-1}``). It is reversible for
``g`` too, so the acceptance ratio is the same. A block is Metropolis-within-Gibbs with a random scan (Roberts &
Rosenthal, "Examples of adaptive MCMC", J. Comput. Graph. Stat. 2009, section 3). It matters where the log-volume is
piecewise constant, as a piecewise-affine generator makes it: a move of all ``d`` coordinates crosses about ``d s``
tile boundaries, so the step that keeps it acceptable shrinks like ``1/d`` and mixing slows like ``d^2`` (Neal,
Roberts & Yuen, Ann. Appl. Probab. 2012). A block of ``k`` coordinates moved far crosses about ``k`` of them.
Measured on hinges with analytic log-volumes, 400 chains at the target from exact draws, integrated autocorrelation
of the share of positive coordinates in sweeps: d = 64, 113 with all coordinates moved and 25 with blocks of 16;
d = 256 (20-nat spread), 900 or more against 222 with blocks of 8.

:func:`adapted_move` tunes one number, the move's *reach* ``k s^2`` (the expected squared jump in the reference's
units), towards :data:`TARGET_ACCEPTANCE`, and reads it as a block size and a step: the step grows to
:data:`LONGEST_STEP` before blocks grow, and blocks grow to :data:`LARGEST_BLOCK` before all coordinates move.

Blocks are not always better: on ``digits-gan`` (16 dimensions, a log-volume far from piecewise constant at the
scale of a move) they shrank to one coordinate and SMC took 6,000 evaluations where moves of all coordinates took
2,500-3,500. So a sampler keeps both adapted (:class:`MoveChoice`): moves of all coordinates with their step tuned
towards :data:`FULL_ACCEPTANCE`, blocks as above, and runs the one with the larger expected squared jump per exact
evaluation (the jump whitened by the population's coordinate variances; Pasarica & Gelman, "Adaptively scaling the
Metropolis algorithm using expected squared jumped distance", Statistica Sinica 2010), trying the other every
:data:`EXPLORE` sweeps. Choosing a kernel from the population's past sweeps is the adaptive SMC practice of Fearnhead
& Taylor ("An adaptive sequential Monte Carlo sampler", Bayesian Analysis 2013). Up to :data:`LARGEST_BLOCK`
dimensions only moves of all coordinates run (:func:`initial_choice`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

TARGET_ACCEPTANCE = 0.3
"""For blocks. Measured on the hinges above: blocks of 16 (acceptance 0.38) and 32 (0.21) in 64 dimensions, 8 (0.32)
and 16 (0.16) in 256, were the best block sizes at the longest step."""
FULL_ACCEPTANCE = 0.135
"""For moves of all coordinates: optimal for random-walk Metropolis on targets with discontinuities (Neal, Roberts &
Yuen 2012); on the 64-dimensional hinge it cut the evaluations per effective sample by 15% against 0.3."""
EXPLORE = 5  # every EXPLORE-th sweep runs the move that scores lower, so its score stays current
SCORE_MEMORY = 0.7  # weight of the running score against the latest sweep's
LONGEST_STEP = 0.99
LARGEST_BLOCK = 64  # above: all coordinates move (a block's conditional is a batch of k x k Cholesky factors)
INFLATION = 1.5
"""Block moves use the reference with its covariance inflated by this factor. A move at the longest step is nearly an
independent draw from the reference, and an independence proposal lighter-tailed than its target visits the tails
too rarely (Mengersen & Tweedie, Ann. Statist. 1996): on the 256-dimensional hinge (20 nats, 8 runs of 200) the
negative coordinates came out 5% too close to zero and the share of positive ones 5 SE too high, and 800 further
sweeps did not remove it (the same kernel started from exact draws did not drift). Inflated 1.5x: -1.1 SE over 8
runs; 2x also removed it but took 30% more evaluations. Moves of all coordinates take short steps around where
they are and keep the fitted covariance: inflated, they shrank their steps and SMC on ``digits-gan`` (30 latents)
took twice the evaluations."""
DENSE_LIMIT = 1024  # latent dimensions above which the reference covariance is diagonal (d x d would not fit)


@dataclass(frozen=True)
class Reference:
    """The Gaussian ``N(mean, factor factor^T)`` a gpCN move is reversible for, on flattened latents (float64).
    ``factor`` is ``(d, d)`` lower triangular, or ``(d,)`` standard deviations for a diagonal reference."""

    mean: Tensor
    factor: Tensor

    def draw(self, noise: Tensor) -> Tensor:
        """``L xi`` for ``noise`` ``(N, d)``."""
        return noise @ self.factor.T if self.factor.ndim == 2 else noise * self.factor

    def log_density(self, flat: Tensor) -> Tensor:
        """``log g(z)`` up to a constant, ``(N,)``."""
        centred = flat - self.mean
        if self.factor.ndim == 2:
            whitened = torch.linalg.solve_triangular(self.factor, centred.T, upper=False).T
        else:
            whitened = centred / self.factor
        return -0.5 * (whitened**2).sum(dim=1)

    def to(self, device: torch.device) -> Reference:
        return Reference(self.mean.to(device), self.factor.to(device))

    def inflated(self, factor: float) -> Reference:
        """The same mean with the covariance times ``factor``."""
        return Reference(self.mean, self.factor * math.sqrt(factor))


@dataclass(frozen=True)
class Move:
    """A gpCN step ``s`` in ``(0, LONGEST_STEP]`` applied to ``block`` random coordinates (``None``: all)."""

    step: float
    block: int | None = None


def prior_reference(dimension: int) -> Reference:
    """``N(0, I)``: plain pCN, exact for a standard normal prior at ``beta = 0``."""
    return Reference(torch.zeros(dimension, dtype=torch.float64), torch.ones(dimension, dtype=torch.float64))


def fitted_reference(latents: Tensor) -> Reference:
    """Mean and covariance of the particles, the covariance shrunk towards its diagonal with weight
    ``d / (N + d)`` so it stays positive definite with fewer particles than dimensions; diagonal above
    :data:`DENSE_LIMIT` dimensions."""
    flat = latents.flatten(1).to(torch.float64)
    count, dimension = flat.shape
    mean = flat.mean(dim=0)
    centred = flat - mean
    variances = (centred**2).sum(dim=0) / max(count - 1, 1)
    variances = variances.clamp_min(1e-12 * max(float(variances.mean()), 1e-300))
    if dimension > DENSE_LIMIT or count < 2:
        return Reference(mean, variances.sqrt())
    covariance = centred.T @ centred / (count - 1)
    shrink = dimension / (count + dimension)
    covariance = (1 - shrink) * covariance + shrink * torch.diag(variances)
    factor, info = torch.linalg.cholesky_ex(covariance)
    if int(info) != 0:
        return Reference(mean, variances.sqrt())
    return Reference(mean, factor)


def initial_move(latents: Tensor) -> Move:
    """All coordinates with step ``min(0.5, 2.38 / sqrt(d))``, the pCN step whose random-walk limit is the
    classical optimal scaling; :func:`adapted_move` turns it into blocks where that accepts too little."""
    return Move(min(0.5, 2.38 / math.sqrt(latents[0].numel())))


def adapted_move(move: Move, acceptance: float, dimension: int) -> Move:
    """Robbins–Monro on the reach ``k s^2`` towards :data:`TARGET_ACCEPTANCE`: ``reach * exp(acceptance -
    target)``, read back as one coordinate with a shorter step (reach under ``LONGEST_STEP^2``), a block at the
    longest step (up to ``min(d, LARGEST_BLOCK)`` coordinates), or all ``d`` coordinates with step
    ``sqrt(reach / d)``."""
    longest = LONGEST_STEP**2
    largest = min(dimension, LARGEST_BLOCK)
    reach = (dimension if move.block is None else move.block) * move.step**2
    reach = min(reach * math.exp(acceptance - TARGET_ACCEPTANCE), dimension * longest)
    if reach > largest * longest and largest < dimension:
        return Move(math.sqrt(reach / dimension))
    block = min(largest, max(1, round(reach / longest)))
    step = min(LONGEST_STEP, math.sqrt(reach / block))
    return Move(step, None if block >= dimension else block)


@dataclass(frozen=True)
class MoveChoice:
    """Both moves, each adapted to its own acceptance, and their running scores (expected squared jump per exact
    evaluation; NaN until tried). :meth:`current` is the move to run next."""

    full: Move
    block: Move
    scores: tuple[float, float] = (math.nan, math.nan)
    sweeps: int = 0

    @property
    def blocked(self) -> bool:
        """Whether :meth:`current` is the block move."""
        full, block = self.scores
        if self.block.block is None:
            return False
        if math.isnan(full) or math.isnan(block):
            return math.isnan(block) and not math.isnan(full)
        better = block > full
        return better != (self.sweeps % EXPLORE == EXPLORE - 1)

    def current(self) -> Move:
        return self.block if self.blocked else self.full

    def after(self, acceptance: float, jump: float, dimension: int) -> MoveChoice:
        """The choice after a sweep of :meth:`current` with this ``acceptance`` and ``jump`` (per evaluation)."""
        blocked = self.blocked
        old = self.scores[blocked]
        score = jump if math.isnan(old) else SCORE_MEMORY * old + (1 - SCORE_MEMORY) * jump
        scores = (self.scores[0], score) if blocked else (score, self.scores[1])
        full, block = self.full, self.block
        if blocked:
            block = adapted_move(block, acceptance, dimension)
            block = block if block.block is not None else Move(LONGEST_STEP, min(dimension, LARGEST_BLOCK) - 1)
        else:
            full = Move(min(full.step * math.exp(acceptance - FULL_ACCEPTANCE), LONGEST_STEP))
        return MoveChoice(full, block, scores, self.sweeps + 1)


def initial_choice(latents: Tensor) -> MoveChoice:
    """Moves of all coordinates at :func:`initial_move`'s step, and, above :data:`LARGEST_BLOCK` dimensions, blocks
    of 8 coordinates at the longest step. In 64 dimensions and fewer only moves of all coordinates run: on the
    64-dimensional hinge blocks changed nothing (12,336 evaluations against 12,763, one run, delayed acceptance) and
    on ``digits-gan`` (16 dimensions, 30 latents) they doubled the evaluations."""
    dimension = latents[0].numel()
    block = Move(LONGEST_STEP, 8) if dimension > LARGEST_BLOCK else Move(LONGEST_STEP)
    return MoveChoice(initial_move(latents), block)


def whitened_jump(before: Tensor, after: Tensor, evaluations: int) -> float:
    """Sum over particles of the squared move ``||z' - z||^2``, each coordinate divided by its variance across
    ``before`` ``(N, d)``, per exact evaluation the sweep spent (at least one)."""
    variances = before.var(dim=0).clamp_min(1e-12)
    return float((((after - before) ** 2) / variances).sum()) / max(evaluations, 1)


def gpcn_proposal(flat: Tensor, move: Move, reference: Reference, random: torch.Generator) -> Tensor:
    """The gpCN proposals ``(N, d)`` float64 for flattened latents ``flat`` ``(N, d)``: all coordinates moved, or
    a random block of ``move.block`` per row under the reference's conditional (see the module docstring)."""
    noise = torch.randn(flat.shape, generator=random, dtype=torch.float64).to(flat.device)
    shrink = math.sqrt(1 - move.step**2)
    if move.block is None or move.block >= flat.shape[1]:
        return reference.mean + shrink * (flat - reference.mean) + move.step * reference.draw(noise)
    count, dimension = flat.shape
    keys = torch.rand(count, dimension, generator=random, dtype=torch.float64).to(flat.device)
    blocks = keys.topk(move.block, dim=1).indices  # (N, k): k distinct coordinates per row
    centred = flat - reference.mean
    own = centred.gather(1, blocks)
    if reference.factor.ndim == 1:  # diagonal: the conditional is the marginal
        conditional_mean = torch.zeros_like(own)
        spread = reference.factor[blocks] * noise[:, :move.block]
    else:
        precision = torch.cholesky_inverse(reference.factor)
        block_precision = precision[blocks[:, :, None], blocks[:, None, :]]  # (N, k, k)
        factor = torch.linalg.cholesky(block_precision)
        pulled = (centred @ precision).gather(1, blocks)  # (Q (z - m))_B
        conditional_mean = own - torch.cholesky_solve(pulled[:, :, None], factor)[:, :, 0]
        spread = torch.linalg.solve_triangular(factor.mT, noise[:, :move.block, None], upper=True)[:, :, 0]
    moved = conditional_mean + shrink * (own - conditional_mean) + move.step * spread
    return flat.scatter(1, blocks, reference.mean[blocks] + moved)
