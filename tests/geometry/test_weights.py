import math

import pytest
import torch

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.geometry import effective_sample_size, log_weights, max_weight


def test_large_log_volumes_do_not_saturate():
    weights = log_weights(torch.tensor([800.0, 850.0, 900.0]), rho=1.0).exp()
    assert weights.dtype == torch.float64
    torch.testing.assert_close(weights, torch.tensor([math.exp(-100), math.exp(-50), 1.0], dtype=torch.float64),
                               rtol=1e-12, atol=0)
    assert weights[0] > 0, "log space keeps even e^-100 distinct from zero"


def test_weights_are_normalised_and_scale_with_rho():
    volumes = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    for rho in (-1.0, 0.0, 0.5, 2.0):
        result = log_weights(volumes, rho=rho)
        assert abs(float(torch.logsumexp(result, 0))) < 1e-15
        expected = rho * volumes - torch.logsumexp(rho * volumes, 0)
        torch.testing.assert_close(result, expected, rtol=0, atol=1e-15)


def test_uniform_target_divides_by_the_proposal_and_tilted_needs_the_prior():
    volumes = torch.tensor([0.0, 0.0])
    log_q = torch.tensor([0.0, math.log(4.0)])
    torch.testing.assert_close(log_weights(volumes, target="uniform", log_proposal=log_q).exp(),
                               torch.tensor([0.8, 0.2], dtype=torch.float64))
    with pytest.raises(InvalidArgumentError, match="also needs log_prior"):
        log_weights(volumes, log_proposal=log_q)
    log_p = torch.tensor([math.log(2.0), 0.0])
    torch.testing.assert_close(log_weights(volumes, log_proposal=log_q, log_prior=log_p).exp(),
                               torch.tensor([8 / 9, 1 / 9], dtype=torch.float64))


def test_minus_inf_volumes_get_zero_weight_and_negative_rho_refuses_them():
    volumes = torch.tensor([-math.inf, 0.0, 1.0])
    assert log_weights(volumes, rho=1.0)[0] == -math.inf
    torch.testing.assert_close(log_weights(volumes, rho=0.0).exp(), torch.full((3,), 1 / 3, dtype=torch.float64))
    with pytest.raises(DegenerateWeightsError, match="infinite weight to the 1 rank-deficient"):
        log_weights(volumes, rho=-1.0)
    with pytest.raises(DegenerateWeightsError, match="no latent has positive weight"):
        log_weights(torch.full((3,), -math.inf))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_volumes": torch.tensor([0.0, math.nan])}, "log_volumes must be finite or -inf"),
        ({"log_volumes": torch.zeros(2, 2)}, "1-D tensor"),
        ({"log_volumes": torch.zeros(2), "rho": math.inf}, "rho must be a finite number"),
        ({"log_volumes": torch.zeros(2), "target": "flat"}, "unknown target 'flat'"),
        ({"log_volumes": torch.zeros(2), "target": "uniform", "log_proposal": torch.zeros(3)}, "shape"),
        ({"log_volumes": torch.zeros(2), "target": "uniform", "log_proposal": torch.tensor([0.0, -math.inf])},
         "log_proposal must be finite"),
    ],
)
def test_bad_inputs_are_refused(kwargs, message):
    kwargs = dict(kwargs)  # a copy: the parameter is shared by every run of this test in one process
    volumes = kwargs.pop("log_volumes")
    with pytest.raises(InvalidArgumentError, match=message):
        log_weights(volumes, **kwargs)


def test_effective_sample_size_and_max_weight():
    assert effective_sample_size(torch.zeros(10)) == pytest.approx(10.0, rel=1e-12)
    assert effective_sample_size(torch.tensor([0.0, -math.inf, -math.inf])) == pytest.approx(1.0, rel=1e-12)
    unequal = torch.log(torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)) + 7.0  # unnormalised is fine
    assert effective_sample_size(unequal) == pytest.approx(1 / (0.25 + 0.0625 + 0.0625), rel=1e-12)
    assert max_weight(unequal) == pytest.approx(0.5, rel=1e-12)
    assert effective_sample_size(log_weights(torch.tensor([800.0, 850.0, 900.0]))) == pytest.approx(1.0, rel=1e-12)


def test_max_weight_takes_rank_deficient_latents_and_names_bad_input():
    weights = torch.tensor([0.0, -math.inf, math.log(3.0)], dtype=torch.float64)
    assert max_weight(weights) == pytest.approx(0.75, rel=1e-12)
    with pytest.raises(InvalidArgumentError, match=r"^log_weights must be finite or -inf; 1 entries are not"):
        max_weight(torch.tensor([0.0, math.nan]))


def test_log_prior_is_checked_like_every_log_density_and_refused_for_the_uniform_target():
    volumes, proposal = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match=r"^log_prior has shape \(2,\) but log_volumes has \(3,\)$"):
        log_weights(volumes, log_proposal=proposal, log_prior=torch.zeros(2))
    with pytest.raises(InvalidArgumentError,
                       match=r"^log_prior must be finite or -inf; 1 entries are not \(first index 1\)$"):
        log_weights(volumes, log_proposal=proposal, log_prior=torch.tensor([0.0, math.nan, 0.0]))
    outside = log_weights(volumes, log_proposal=proposal, log_prior=torch.tensor([0.0, -math.inf, 0.0]))
    assert outside.tolist() == [math.log(0.5), -math.inf, math.log(0.5)]  # outside the prior: weight 0
    with pytest.raises(InvalidArgumentError, match=r"^target='tilted' with log_proposal also needs log_prior "
                                                   r"\(the latent prior's log density\)$"):
        log_weights(volumes, log_proposal=proposal)
    with pytest.raises(InvalidArgumentError,
                       match=r"^target='uniform' does not use log_prior; pass log_proposal only$"):
        log_weights(volumes, target="uniform", log_prior=proposal)


def test_tilted_refuses_rank_deficient_latents_for_negative_rho_only():
    from gendebias.geometry.weights import tilted

    volumes = torch.tensor([1.0, -math.inf], dtype=torch.float64)
    assert tilted(volumes, 0.0).tolist() == [0.0, 0.0] and tilted(volumes, 2.0).tolist() == [2.0, -math.inf]
    with pytest.raises(DegenerateWeightsError, match=r"^rho=-1.0 < 0 gives infinite weight to the 1 rank-deficient "
                                                     r"latents \(log_volume -inf\); drop them before weighting$"):
        tilted(volumes, -1.0)
