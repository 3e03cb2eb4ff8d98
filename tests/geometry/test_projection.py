import pytest
import torch
from scipy import stats

from gendebias.errors import InvalidArgumentError
from gendebias.geometry.projection import log_det_moments
from gendebias.geometry.volume import log_volume_estimate


def test_projection_is_unbiased_and_its_error_is_the_spread_over_projections():
    torch.manual_seed(0)
    matrix = torch.randn(60, 6, dtype=torch.float64) * torch.logspace(0, 2, 6, dtype=torch.float64)
    truth = torch.linalg.svdvals(matrix).log().sum()
    latents = torch.randn(1, 6, dtype=torch.float64)
    estimates = [log_volume_estimate(lambda z: z @ matrix.T, latents, method="projection", projection_dim=12, seed=s)
                 for s in range(400)]
    errors = torch.tensor([float(e.log_volume[0] - truth) for e in estimates], dtype=torch.float64)
    reported = float(estimates[0].error[0])
    assert abs(float(errors.mean())) < 3 * reported / 400**0.5, "debiased by the exact matrix-beta mean"
    assert 0.85 < float(errors.std()) / reported < 1.15, "the reported error is the standard deviation"
    naive = errors + log_det_moments(6, 12, 60)[0] / 2  # the published pipeline: no correction
    assert float(naive.mean()) < -10 * reported / 400**0.5, "without the correction it is biased low"


def test_the_moments_match_a_monte_carlo_of_haar_frames():
    generator = torch.Generator().manual_seed(1)
    samples = []
    for _ in range(3000):
        frame = torch.linalg.qr(torch.randn(30, 4, generator=generator, dtype=torch.float64)).Q
        samples.append(float(torch.linalg.slogdet(frame[:9].T @ frame[:9]).logabsdet))
    mean, variance = log_det_moments(4, 9, 30)
    assert stats.ttest_1samp(samples, mean).pvalue > 1e-3
    assert abs(torch.tensor(samples).var().item() / variance - 1) < 0.1
    assert log_det_moments(4, 30, 30) == (0.0, 0.0), "p = D is no projection"


def test_full_projection_is_exact_and_small_ones_warn(mlp):
    generator = mlp([3, 16, 8])
    latents = torch.randn(4, 3, dtype=torch.float64)
    exact = log_volume_estimate(generator, latents)
    full = log_volume_estimate(generator, latents, method="projection", projection_dim=8)
    torch.testing.assert_close(full.log_volume, exact.log_volume, rtol=0, atol=1e-12)
    assert full.products == 8 and bool((full.error == 0).all())
    with pytest.warns(UserWarning, match="projection_dim 4 is below 2 \\* latent_dim = 6"):
        log_volume_estimate(generator, latents, method="projection", projection_dim=4)
    with pytest.raises(InvalidArgumentError, match=r"projection_dim must be an int in \[3, 8\]"):
        log_volume_estimate(generator, latents, method="projection", projection_dim=2)


def test_top_k_through_a_projection_stays_inside_its_interlacing_bound():
    torch.manual_seed(0)
    matrix = torch.randn(400, 20, dtype=torch.float64) * torch.logspace(0, 0.3, 20, dtype=torch.float64)
    truth = torch.linalg.svdvals(matrix)[:5].log().sum()
    latents = torch.randn(1, 20, dtype=torch.float64)
    estimates = [log_volume_estimate(lambda z: z @ matrix.T, latents, method="projection", top_k=5,
                                     projection_dim=60, seed=s) for s in range(40)]
    errors = torch.tensor([float(e.log_volume[0] - truth) for e in estimates])
    bound = float(estimates[0].error[0])
    assert float(errors.abs().max()) <= bound  # measured: max 0.89 nats, bound 2.39
    assert float(errors.mean()) > 3 * float(errors.std()) / 40**0.5, "biased: why the bound, not an SD, is reported"
