"""SIR on a pool: what it draws and what it reports, against the weights and resamplers it is built from."""

import math

import pytest
import torch

from gendebias.geometry import effective_sample_size, log_weights, max_weight, rejection_sample, resample
from gendebias.geometry.sir import resample_pool

POOL = torch.arange(40, dtype=torch.float64).reshape(20, 2)
LOG_VOLUMES = torch.linspace(-2.0, 2.0, 20, dtype=torch.float64)


@pytest.mark.parametrize("scheme", ["multinomial", "systematic"])
def test_sir_draws_the_resampled_pool_entries_and_reports_their_weights_and_ess(scheme):
    drawn = resample_pool(POOL, LOG_VOLUMES, 15, rho=0.7, target="tilted", log_proposal=None, scheme=scheme, seed=3)
    weights = log_weights(LOG_VOLUMES, rho=0.7)
    indices = resample(weights, 15, scheme=scheme, seed=3)
    assert torch.equal(drawn.trace.indices, indices) and torch.equal(drawn.latents, POOL[indices])
    torch.testing.assert_close(drawn.log_weights, weights[indices], rtol=0, atol=0)
    pool_ess = effective_sample_size(weights)
    assert drawn.trace.pool_ess == pytest.approx(pool_ess, rel=1e-15)
    assert drawn.ess == pytest.approx(1 / (1 / 15 + 1 / pool_ess), rel=1e-15)
    assert drawn.trace.max_weight == pytest.approx(max_weight(weights), rel=1e-15)
    assert drawn.distinct == int(torch.unique(indices).shape[0]) and drawn.distinct < 15
    assert (drawn.trace.proposals, drawn.trace.scheme) == (20, scheme) and math.isnan(drawn.trace.acceptance_rate)


def test_sir_by_rejection_reports_the_acceptance_rate():
    drawn = resample_pool(POOL, LOG_VOLUMES, 3, rho=1.0, target="tilted", log_proposal=None, scheme="rejection",
                          seed=1)
    expected = rejection_sample(log_weights(LOG_VOLUMES, rho=1.0), 3, seed=1)
    assert torch.equal(drawn.trace.indices, expected.indices)
    assert drawn.trace.acceptance_rate == expected.acceptance_rate > 0


def test_sir_passes_the_proposal_and_the_class_probabilities_to_the_weights():
    log_proposal = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
    uniform = resample_pool(POOL, LOG_VOLUMES, 10, rho=1.0, target="uniform", log_proposal=log_proposal,
                            scheme="multinomial", seed=0)
    torch.testing.assert_close(uniform.log_weights, log_weights(LOG_VOLUMES, target="uniform",
                                                                log_proposal=log_proposal)[uniform.trace.indices])
    classes = torch.nn.functional.one_hot(torch.arange(20) % 2, 2).double()
    balanced = resample_pool(POOL, LOG_VOLUMES, 10, rho=1.0, target="balanced", log_proposal=None,
                             scheme="multinomial", seed=0, class_probabilities=classes)
    expected = log_weights(LOG_VOLUMES, target="balanced", class_probabilities=classes)
    torch.testing.assert_close(balanced.log_weights, expected[balanced.trace.indices])
