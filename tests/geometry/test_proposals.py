"""Block gpCN proposals: reversible for the reference (so their moves keep a target), and the adapted move size."""

import math

import pytest
import torch
from torch import nn

from gendebias.generators import Generator
from gendebias.geometry.kernels import Particles, TemperedTarget, metropolis_sweep
from gendebias.geometry.proposals import (
    EXPLORE,
    FULL_ACCEPTANCE,
    LARGEST_BLOCK,
    LONGEST_STEP,
    Move,
    MoveChoice,
    Reference,
    adapted_move,
    fitted_reference,
    gpcn_proposal,
    initial_choice,
    whitened_jump,
)

GAIN = 1.5  # log-volume gain [z_j > 0] per coordinate: each is positive with probability e^1.5 / (1 + e^1.5)
SHARE = math.exp(GAIN) / (1 + math.exp(GAIN))


def exact_draws(count: int, dimension: int, seed: int) -> torch.Tensor:
    random = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(count, dimension, generator=random, dtype=torch.float64) < SHARE, 1.0, -1.0)
    return signs * torch.randn(count, dimension, generator=random, dtype=torch.float64).abs()


@pytest.mark.parametrize("diagonal", [False, True])
def test_block_moves_keep_an_exact_sample_of_a_hinge_target(diagonal):
    # z ~ N(0, I) tilted by GAIN per positive coordinate: each coordinate is a two-sided half-normal with exact
    # positive share and mean. Exact draws moved by 30 block sweeps must still have them (within 3 SE).
    dimension, count = 12, 4000
    generator = Generator(nn.Identity(), latent_shape=(dimension,), dtype=torch.float64)
    goal = TemperedTarget(generator, 1.0, "tilted", log_volume_function=lambda z: GAIN * (z > 0).double().sum(1))
    reference = fitted_reference(exact_draws(500, dimension, seed=1))
    if diagonal:
        reference = Reference(reference.mean, torch.diagonal(reference.factor @ reference.factor.T).sqrt())
    latents = exact_draws(count, dimension, seed=2)
    particles = Particles(latents, goal.log_volumes(latents), goal.log_base(latents))
    random, accepted = torch.Generator().manual_seed(3), []
    for _ in range(30):
        particles, moved = metropolis_sweep(goal, particles, 1.0, Move(0.99, 3), reference, random)
        accepted.append(float(moved.double().mean()))
    positive = (particles.latents > 0).double()
    mean = (2 * SHARE - 1) * math.sqrt(2 / math.pi)
    variance = 1 - mean**2
    assert abs(float(positive.mean()) - SHARE) < 3 * math.sqrt(SHARE * (1 - SHARE) / positive.numel())
    assert abs(float(particles.latents.mean()) - mean) < 3 * math.sqrt(variance / particles.latents.numel())
    assert 0.2 < sum(accepted) / len(accepted) < 0.9 and not torch.equal(particles.latents, latents)


def test_a_block_proposal_changes_exactly_its_block_and_follows_the_conditional_of_the_reference():
    # a correlated 3-d Gaussian reference; blocks of one coordinate at step 1 are draws from its conditional
    covariance = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64)
    reference = Reference(torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64), torch.linalg.cholesky(covariance))
    start = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64).repeat(20000, 1)
    moved = gpcn_proposal(start, Move(1.0, 1), reference, torch.Generator().manual_seed(0))
    changed = moved != start
    assert bool((changed.sum(1) == 1).all())
    first = moved[changed[:, 0], 0]  # z_0 given z_1 = 0, z_2 = 1
    rest = [1, 2]
    gain = covariance[0, rest] @ torch.linalg.inv(covariance[rest][:, rest])
    mean = 1.0 + gain @ (torch.tensor([0.0, 1.0], dtype=torch.float64) - torch.tensor([-1.0, 0.5]).double())
    variance = covariance[0, 0] - gain @ covariance[rest, 0]
    assert abs(float(first.mean()) - float(mean)) < 4 * math.sqrt(float(variance) / first.numel())
    assert float(first.var()) == pytest.approx(float(variance), rel=0.06)


@pytest.mark.parametrize(("move", "acceptance", "dimension", "expected"), [
    (Move(0.5), 0.3, 64, Move(0.99, 16)),  # at the target: the same reach (16 x 0.25), read as a block of 16
    (Move(0.99, 8), 0.3 + math.log(2), 256, Move(0.99, 16)),  # twice the reach: twice the block
    (Move(0.99, 1), 0.3 - math.log(4), 256, Move(0.495, 1)),  # a quarter of one coordinate's: half the step
    (Move(0.99, 64), 0.3 + math.log(2), 256, Move(math.sqrt(2 * 64 * 0.99**2 / 256))),  # past the largest block
    (Move(0.99), 1.0, 16, Move(0.99)),  # all coordinates at the longest step: nothing further
])
def test_the_move_adapts_its_reach_and_reads_it_as_a_step_and_a_block(move, acceptance, dimension, expected):
    adapted = adapted_move(move, acceptance, dimension)
    assert adapted.block == expected.block and adapted.step == pytest.approx(expected.step)
    assert 0 < adapted.step <= LONGEST_STEP and (adapted.block is None or adapted.block <= LARGEST_BLOCK)


def test_the_choice_tries_both_moves_then_runs_the_one_that_jumps_further_per_evaluation_and_explores_the_other():
    choice = initial_choice(torch.zeros(1, 256, dtype=torch.float64))
    assert choice.current() == Move(2.38 / 16) and choice.block == Move(LONGEST_STEP, 8)
    choice = choice.after(FULL_ACCEPTANCE, 0.5, 256)  # all coordinates: 0.5 per evaluation
    assert choice.blocked and choice.current() == Move(LONGEST_STEP, 8)
    choice = choice.after(0.3, 2.0, 256)  # blocks: 2.0 per evaluation, at the block target: same block
    assert choice.scores == (0.5, 2.0) and choice.block == Move(LONGEST_STEP, 8)
    runs = []
    for _ in range(2 * EXPLORE):
        runs.append(choice.blocked)
        choice = choice.after(0.3 if choice.blocked else FULL_ACCEPTANCE, 2.0 if choice.blocked else 0.5, 256)
    assert runs.count(False) == 2 and runs[EXPLORE - 3] is False  # the lower-scoring move, every EXPLORE sweeps
    assert choice.full.step == pytest.approx(2.38 / 16)  # each move adapts to its own acceptance only


@pytest.mark.parametrize("dimension", [1, 16, 64])
def test_up_to_64_dimensions_only_moves_of_all_coordinates_run(dimension):
    choice = initial_choice(torch.zeros(1, dimension, dtype=torch.float64))
    assert choice.block.block is None and not choice.blocked
    assert not choice.after(0.9, 1.0, dimension).blocked


def test_the_scores_are_running_means_and_a_move_that_falls_behind_loses_the_choice():
    choice = MoveChoice(Move(0.3), Move(LONGEST_STEP, 8), (1.0, 2.0), sweeps=0)
    assert choice.blocked
    choice = choice.after(0.3, 0.0, 64)  # a block sweep that moved nothing: 0.7 * 2.0
    assert choice.scores == pytest.approx((1.0, 1.4))
    choice = choice.after(0.3, 0.0, 64)
    assert choice.scores == pytest.approx((1.0, 0.98)) and not choice.blocked


def test_the_whitened_jump_divides_each_coordinate_by_its_variance():
    before = torch.tensor([[0.0, 0.0], [2.0, 20.0]], dtype=torch.float64)  # variances 2 and 200
    after = before + torch.tensor([[1.0, 10.0], [0.0, 0.0]], dtype=torch.float64)
    assert whitened_jump(before, after, 1) == pytest.approx(1 / 2 + 100 / 200)
    assert whitened_jump(before, after, 4) == pytest.approx((1 / 2 + 100 / 200) / 4)
    assert whitened_jump(before, after, 0) == pytest.approx(1 / 2 + 100 / 200)  # a sweep that evaluated nothing
