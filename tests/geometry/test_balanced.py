"""The ``balanced`` target on the tent toy, where a class is a region of the latent box and every answer is exact."""

import math
import re

import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.generators.registry import builtin_registry
from gendebias.generators.toys import Tent
from gendebias.geometry import balanced_log_weights, effective_sample_size, log_weights, resample, sample

TENT = Tent(slope=2.0, step=3.0, kink=0.5)
SPLIT = 0.5  # class 1 is z1 > 0.5: a quarter of the box, cutting across the tent's tiles


def _pool(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Uniform latents on [-1, 1]^2, their exact log-volumes and their class (1 where z1 > SPLIT)."""
    latents = torch.rand(count, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    upper = latents[:, 1] > TENT.kink
    log_volumes = 0.5 * torch.log1p(TENT.slope**2 + TENT.step**2 * upper.double())
    return latents, log_volumes, (latents[:, 0] > SPLIT).long()


def _upper_area_share() -> float:
    """Exact share of the surface area above the step (z2 > kink) inside any vertical band of the box."""
    upper = (1 - TENT.kink) * math.sqrt(1 + TENT.slope**2 + TENT.step**2)
    lower = (1 + TENT.kink) * math.sqrt(1 + TENT.slope**2)
    return upper / (upper + lower)


def test_hard_labels_give_equal_class_masses_exactly_and_keep_the_tilted_weights_inside_a_class():
    _, log_volumes, labels = _pool(40_000, seed=0)
    probabilities = torch.nn.functional.one_hot(labels, 2).double()
    balanced = balanced_log_weights(log_volumes, probabilities, rho=1.0)
    weights = balanced.log_weights.exp()
    torch.testing.assert_close(weights @ probabilities, torch.tensor([0.5, 0.5], dtype=torch.float64),
                               rtol=0, atol=1e-12)
    tilted = log_weights(log_volumes, rho=1.0).exp()
    masses = tilted @ probabilities
    torch.testing.assert_close(balanced.class_masses, masses, rtol=1e-12, atol=0)
    torch.testing.assert_close(balanced.lambdas, 1 / masses, rtol=1e-12, atol=0)
    assert balanced.iterations <= 2, "hard labels need one step (and one to see it moved no more)"
    for label in (0, 1):  # inside a class the weights are the tilted ones, rescaled
        ratio = weights[labels == label] / tilted[labels == label]
        torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0])), rtol=1e-10, atol=0)
    assert abs(float(masses[1]) - 0.25) < 0.01, "naive and tilted put a quarter of the mass in class 1"


def test_resampled_balanced_draws_are_balanced_and_volume_uniform_inside_each_class():
    latents, log_volumes, labels = _pool(40_000, seed=1)
    probabilities = torch.nn.functional.one_hot(labels, 2).double()
    weights = log_weights(log_volumes, target="balanced", class_probabilities=probabilities)
    pool_ess = effective_sample_size(weights)
    draws = resample(weights, 4000, scheme="multinomial", seed=2)
    drawn_labels = labels[draws]
    upper = latents[draws, 1] > TENT.kink
    share = float(drawn_labels.double().mean())
    error = math.sqrt(0.25 * (1 / 4000 + 1 / pool_ess))
    assert abs(share - 0.5) < 3 * error, f"class 1 share {share:.4f} vs 0.5 (SE {error:.4f})"
    exact = _upper_area_share()
    for label in (0, 1):
        inside = drawn_labels == label
        measured = float(upper[inside].double().mean())
        count = int(inside.sum())
        error = math.sqrt(exact * (1 - exact) * (1 / count + 2 / pool_ess))
        assert abs(measured - exact) < 3 * error, \
            f"class {label}: upper-tile share {measured:.4f} vs the exact area share {exact:.4f} (SE {error:.4f})"


def test_soft_labels_converge_to_equal_soft_masses_of_the_classifier_itself():
    latents, log_volumes, _ = _pool(20_000, seed=3)
    logits = torch.stack([torch.zeros(latents.shape[0], dtype=torch.float64), 6 * (latents[:, 0] - SPLIT),
                          3 * latents[:, 1]], dim=1)
    probabilities = torch.softmax(logits, dim=1)
    balanced = balanced_log_weights(log_volumes, probabilities, rho=1.0)
    weights = balanced.log_weights.exp()
    torch.testing.assert_close(weights @ probabilities, torch.full((3,), 1 / 3, dtype=torch.float64),
                               rtol=0, atol=1e-9)
    assert 2 < balanced.iterations < 10_000
    # the weight is vol^rho * sum_c p~(c | x) lambda_c with p~ the posterior adjusted to the class masses
    tilted = log_weights(log_volumes, rho=1.0).exp()
    adjusted = probabilities * balanced.class_masses
    adjusted = adjusted / adjusted.sum(dim=1, keepdim=True)
    expected = tilted * (adjusted @ balanced.lambdas)
    torch.testing.assert_close(weights, expected / expected.sum(), rtol=1e-10, atol=0)
    # and the class masses are a fixed point: those the adjusted posteriors give under the tilted weights
    torch.testing.assert_close(tilted @ adjusted, balanced.class_masses, rtol=0, atol=1e-10)


def test_rho_zero_balances_naive_sampling_and_an_absent_class_gets_infinite_lambda():
    _, log_volumes, labels = _pool(1000, seed=4)
    probabilities = torch.cat([torch.nn.functional.one_hot(labels, 2).double(),
                               torch.zeros(1000, 1, dtype=torch.float64)], dim=1)
    balanced = balanced_log_weights(log_volumes, probabilities, rho=0.0)
    assert math.isinf(float(balanced.lambdas[2]))
    torch.testing.assert_close(balanced.log_weights.exp() @ probabilities,
                               torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64), rtol=0, atol=1e-12)


def test_log_weights_routes_balanced_and_says_what_is_missing():
    _, log_volumes, labels = _pool(100, seed=5)
    probabilities = torch.nn.functional.one_hot(labels, 2).double()
    torch.testing.assert_close(log_weights(log_volumes, rho=0.5, target="balanced", class_probabilities=probabilities),
                               balanced_log_weights(log_volumes, probabilities, rho=0.5).log_weights)
    with pytest.raises(InvalidArgumentError, match="needs class_probabilities"):
        log_weights(log_volumes, target="balanced")
    with pytest.raises(InvalidArgumentError, match="balanced' only"):
        log_weights(log_volumes, target="tilted", class_probabilities=probabilities)
    with pytest.raises(InvalidArgumentError, match="N = 100 rows"):
        balanced_log_weights(log_volumes, probabilities[:10])
    with pytest.raises(InvalidArgumentError, match="summing to 1"):
        balanced_log_weights(log_volumes, probabilities * 2)


def _tile_classes(latents: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot((latents[:, 0] > SPLIT).long(), 2).double()


def _tent_log_volumes(latents: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.log1p(TENT.slope**2 + TENT.step**2 * (latents[:, 1] > TENT.kink).double())


@pytest.mark.parametrize("sampler", ["auto", "sir", "smc", "mcmc"])
def test_every_sampler_draws_balanced_classes_that_stay_volume_uniform(sampler):
    generator = builtin_registry()["tent"]
    result = sample(generator, 2000, target="balanced", sampler=sampler, seed=0, class_probabilities=_tile_classes,
                    log_volume_function=_tent_log_volumes)
    assert result.sampler == ("sir" if sampler == "auto" else sampler)
    if sampler in ("smc", "mcmc"):
        assert "class masses fixed from the pilot" in result.choice
    right = result.latents[:, 0] > SPLIT
    upper = result.latents[:, 1] > TENT.kink
    share = float(right.double().mean())
    assert abs(share - 0.5) < 3 * math.sqrt(0.25 / result.ess), f"{sampler}: class share {share:.4f}"
    exact = _upper_area_share()
    for inside in (right, ~right):
        measured = float(upper[inside].double().mean())
        error = math.sqrt(exact * (1 - exact) / (result.ess * float(inside.double().mean())))
        assert abs(measured - exact) < 3 * error, f"{sampler}: upper share {measured:.4f} vs {exact:.4f}"


def test_sample_refuses_balanced_without_a_classifier():
    with pytest.raises(InvalidArgumentError, match="needs a classifier"):
        sample(builtin_registry()["tent"], 10, target="balanced", seed=0)


def _hard(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, classes).double()


def test_one_class_is_accepted_and_leaves_the_tilted_weights_as_they_are():
    log_volumes = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    balanced = balanced_log_weights(log_volumes, torch.ones(3, 1, dtype=torch.float64), rho=1.0)
    torch.testing.assert_close(balanced.log_weights, log_weights(log_volumes, rho=1.0), rtol=0, atol=1e-15)
    assert balanced.class_masses.tolist() == [1.0]
    assert balanced.iterations == 1, "the masses start at 1 / C = 1, already the fixed point"


def test_hard_labels_stop_after_one_step_when_balanced_and_two_when_not():
    log_volumes = torch.zeros(4, dtype=torch.float64)
    assert balanced_log_weights(log_volumes, _hard(torch.tensor([0, 0, 1, 1]), 2)).iterations == 1
    unbalanced = balanced_log_weights(log_volumes, _hard(torch.tensor([0, 0, 0, 1]), 2))
    assert unbalanced.iterations == 2, "one step reaches the masses, one more sees they moved no more"
    torch.testing.assert_close(unbalanced.class_masses, torch.tensor([0.75, 0.25], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    torch.testing.assert_close(unbalanced.log_weights.exp(), torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2],
                                                                          dtype=torch.float64), rtol=0, atol=1e-15)


def test_the_proposal_the_prior_and_rho_enter_the_tilted_part():
    log_volumes = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    log_prior = torch.tensor([0.0, -0.5, -1.0, -2.0], dtype=torch.float64)
    log_proposal = torch.tensor([0.3, 0.0, -0.2, 0.1], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1])
    balanced = balanced_log_weights(log_volumes, _hard(labels, 2), rho=0.5, log_proposal=log_proposal,
                                    log_prior=log_prior)
    tilted = torch.softmax(0.5 * log_volumes + log_prior - log_proposal, 0)
    masses = torch.stack([tilted[labels == 0].sum(), tilted[labels == 1].sum()])
    torch.testing.assert_close(balanced.class_masses, masses, rtol=1e-14, atol=0)
    expected = tilted / masses[labels]
    torch.testing.assert_close(balanced.log_weights.exp(), expected / expected.sum(), rtol=1e-14, atol=0)


def test_a_class_held_only_by_zero_weight_latents_is_absent_and_the_others_balance():
    log_volumes = torch.tensor([0.0, math.log(3.0), 0.0, -math.inf], dtype=torch.float64)
    balanced = balanced_log_weights(log_volumes, _hard(torch.tensor([0, 0, 1, 2]), 3), rho=1.0)
    torch.testing.assert_close(balanced.class_masses, torch.tensor([0.8, 0.2, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    assert math.isinf(float(balanced.lambdas[2]))
    weights = balanced.log_weights.exp()
    torch.testing.assert_close(weights, torch.tensor([0.125, 0.375, 0.5, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-15)


def test_soft_labels_stop_only_when_every_class_mass_is_still_to_1e_12_relative():
    latents = torch.rand(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    logits = torch.stack([torch.zeros(4000, dtype=torch.float64), 3 * (latents[:, 0] - 0.3), 3 * latents[:, 1]], 1)
    probabilities = torch.softmax(logits, 1)
    balanced = balanced_log_weights(0.5 * latents[:, 1], probabilities, rho=1.0)
    assert 0.05 < float(balanced.class_masses[1]) < 0.1, "a small class: an absolute stopping rule would stop early"
    soft_masses = balanced.log_weights.exp() @ probabilities
    # measured: 6e-13 with the relative rule; 7e-12 and 3e-11 when the change is taken absolute or times the mass
    assert float((3 * soft_masses - 1).abs().max()) < 2e-12


@pytest.mark.parametrize("probabilities", [[[1.0, 0.0]] * 3, torch.ones(2, 2) / 2])
def test_class_probabilities_of_the_wrong_kind_or_shape_are_refused_with_what_was_given(probabilities):
    given = "list" if isinstance(probabilities, list) else "(2, 2)"
    with pytest.raises(InvalidArgumentError, match=rf"N = 3 rows \(one per latent\), got {re.escape(given)}") as error:
        balanced_log_weights(torch.zeros(3), probabilities)
    assert error.value.field == "class_probabilities"


def test_negative_probabilities_are_refused_even_when_rows_sum_to_1():
    with pytest.raises(InvalidArgumentError, match=r"^class_probabilities must be finite, non-negative rows summing to "
                                                   r"1; apply softmax to a classifier's logits$") as error:
        balanced_log_weights(torch.zeros(2), torch.tensor([[1.5, -0.5], [0.5, 0.5]], dtype=torch.float64))
    assert error.value.field == "class_probabilities"


def test_rows_off_1_by_float32_rounding_are_accepted_and_renormalised_row_by_row():
    log_volumes = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    exact = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=torch.float64)
    reference = balanced_log_weights(log_volumes, exact)
    torch.testing.assert_close(reference.log_weights, balanced_log_weights(log_volumes, exact, rho=1.0).log_weights,
                               rtol=0, atol=0, msg="rho defaults to 1, as for log_weights")
    rounded = exact.clone()
    rounded[0] *= 1 + 1.5e-5  # within the 1e-5 absolute (+ 1e-5 relative) that the check allows
    torch.testing.assert_close(balanced_log_weights(log_volumes, rounded).log_weights, reference.log_weights,
                               rtol=0, atol=1e-12)
    single = balanced_log_weights(log_volumes, exact.float())
    assert single.log_weights.dtype == torch.float64
    torch.testing.assert_close(single.log_weights, reference.log_weights, rtol=0, atol=1e-6)
