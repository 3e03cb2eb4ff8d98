import math

import pytest
import torch
from torch import nn

from gendebias.errors import InvalidArgumentError
from gendebias.geometry import jacobian, log_volume, log_volume_from_jacobians, singular_values
from gendebias.geometry.volume import condition_certified, gram64, gram_condition_limit


def linear(matrix):
    return lambda z: z @ matrix.T


def test_linear_map_log_volume_is_the_sum_of_log_singular_values():
    torch.manual_seed(0)
    matrix = torch.randn(9, 5, dtype=torch.float64)
    latents = torch.randn(4, 5, dtype=torch.float64)
    expected = torch.linalg.svdvals(matrix).log().sum()
    result = log_volume(linear(matrix), latents)
    assert result.dtype == torch.float64
    assert ((result - expected).abs() / expected.abs()).max() < 1e-10


def test_ill_conditioned_linear_map_takes_the_svd_path_and_stays_accurate():
    torch.manual_seed(1)
    left, _ = torch.linalg.qr(torch.randn(12, 6, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    sigma = torch.logspace(0, -9, 6, dtype=torch.float64)  # condition 1e9, so J^T J has condition 1e18
    matrix = left @ torch.diag(sigma) @ right.T
    expected = sigma.log().sum()
    result = log_volume(linear(matrix), torch.randn(3, 6, dtype=torch.float64))
    # storing the matrix in float64 already moves sigma_min by ~1e-16 / 1e-9 relative: ~1e-7 nats is the floor
    assert (result - expected).abs().max() < 1e-7
    gram_answer = torch.linalg.slogdet(matrix.T @ matrix).logabsdet / 2
    assert (gram_answer - expected).abs() > 0.1, "the trap the fallback avoids: the Gram route loses nats here"


def jacobian_with_condition(kappa, *, rows=2000, latent_dim=100, seed=0):
    """A float64 ``(1, rows, latent_dim)`` Jacobian with singular values spread geometrically from 3 to 3 / kappa."""
    generator = torch.Generator().manual_seed(seed)
    left, _ = torch.linalg.qr(torch.randn(rows, latent_dim, dtype=torch.float64, generator=generator))
    right, _ = torch.linalg.qr(torch.randn(latent_dim, latent_dim, dtype=torch.float64, generator=generator))
    sigma = 3.0 * torch.logspace(0, -math.log10(kappa), latent_dim, dtype=torch.float64)
    return (left @ torch.diag(sigma) @ right.T)[None], sigma


def test_float32_jacobian_at_condition_3e3_takes_the_gram_route_within_its_own_error():
    exact, sigma = jacobian_with_condition(3e3)
    matrix = exact.float()  # rounding to float32 is the least error a float32 Jacobian carries
    result = log_volume_from_jacobians(matrix)
    assert torch.equal(result, log_volume_from_jacobians(matrix, route="gram"))
    svd = log_volume_from_jacobians(matrix, route="svd")
    own_error = (svd - sigma.log().sum()).abs().item()
    assert 1e-7 < own_error < 1e-4
    assert (result - svd).abs().item() < 0.01 * own_error


def test_float32_jacobian_at_condition_1e7_still_takes_the_svd_route():
    exact, _ = jacobian_with_condition(1e7)
    matrix = exact.float()
    result = log_volume_from_jacobians(matrix)
    assert torch.equal(result, log_volume_from_jacobians(matrix, route="svd"))
    # sigma_min is below d * eps32 * sigma_max: rounding noise, so the latent is rank deficient, which only the SVD
    # decides; the Gram route would have returned a finite number
    assert torch.isneginf(result).all()
    assert torch.isfinite(log_volume_from_jacobians(matrix, route="gram")).all()


def test_gram_condition_limit_follows_the_error_bounds():
    eps32, eps64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
    # float32: the Gram error d eps64 kappa^2 stays under J's own d eps32 kappa up to 5e8; the rank tolerance binds
    assert gram_condition_limit(100, torch.float32) == pytest.approx(1 / (100 * eps32))
    # float64: J's own error is always smaller, so the Gram route keeps to its 1e-10 nats floor
    assert gram_condition_limit(6, torch.float64) == pytest.approx(math.sqrt(1e-10 / (6 * eps64)))
    assert gram_condition_limit(100, torch.float64) < 100 < 1e4 < gram_condition_limit(100, torch.float32)


@pytest.mark.parametrize(("kappa", "certified"), [(1.5, True), (6e2, True), (1.01e3, False), (1e5, False)])
def test_condition_certificate_is_never_wrong_and_close_to_kappa(kappa, certified):
    """``kappa < 1e3`` is certified for a spectrum just inside the limit, never for one just outside it."""
    exact, _ = jacobian_with_condition(kappa, rows=300)
    assert condition_certified(gram64(exact), 1e3).item() is certified


def test_top_k_and_singular_values_are_descending_and_exact():
    torch.manual_seed(2)
    matrix = torch.randn(8, 6, dtype=torch.float64)
    latents = torch.randn(3, 6, dtype=torch.float64)
    sigma = torch.linalg.svdvals(matrix)
    values = singular_values(linear(matrix), latents, top_k=4)
    assert values.shape == (3, 4)
    torch.testing.assert_close(values, sigma[:4].expand(3, 4), rtol=1e-12, atol=0)
    result = log_volume(linear(matrix), latents, top_k=4)
    torch.testing.assert_close(result, sigma[:4].log().sum().expand(3), rtol=1e-12, atol=0)


def test_float32_generator_with_latent_dim_512_does_not_overflow(mlp):
    generator32 = mlp([512, 640, 768], dtype=torch.float32, scale=20.0, slope=0.5)
    generator64 = mlp([512, 640, 768], dtype=torch.float64, scale=20.0, slope=0.5)
    latents = torch.randn(4, 512, dtype=torch.float64)
    result32 = log_volume(generator32, latents.float())
    result64 = log_volume(generator64, latents)
    assert result32.dtype == torch.float64
    assert bool(torch.isfinite(result32).all())
    assert result64.min() > 800, "log-volumes this large would overflow exp() in float64, let alone float32"
    assert ((result32 - result64).abs() / result64.abs()).max() < 1e-4


def test_rank_deficient_latents_get_minus_inf_and_the_rest_stay_finite():
    """``G(z) = (relu(z1), z2, z2 + relu(z1))`` loses rank exactly where ``z1 < 0``."""

    def generator(z):
        return torch.stack([torch.relu(z[:, 0]), z[:, 1], z[:, 1] + torch.relu(z[:, 0])], dim=1)

    latents = torch.tensor([[1.0, 0.3], [-1.0, 0.3], [0.5, -2.0], [-0.1, 4.0]])
    result = log_volume(generator, latents)
    deficient = latents[:, 0] < 0
    assert torch.isneginf(result[deficient]).all()
    # J^T J = [[2, 1], [1, 2]] on z1 > 0: log volume = 1/2 log 3
    torch.testing.assert_close(result[~deficient], torch.full((2,), 0.5 * math.log(3), dtype=torch.float64))
    assert not torch.isnan(result).any()


def test_zero_jacobian_is_minus_inf_not_nan():
    result = log_volume_from_jacobians(torch.zeros(2, 5, 3))
    assert torch.isneginf(result).all()


def test_eval_mode_batch_norm_volume_is_analytic():
    torch.manual_seed(4)
    generator = nn.Sequential(nn.Linear(3, 6, bias=False), nn.BatchNorm1d(6)).double().eval()
    generator[1].running_var.uniform_(0.5, 3.0)
    generator[1].weight.data.uniform_(0.5, 2.0)
    bn = generator[1]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    expected = torch.linalg.svdvals(scale[:, None] * generator[0].weight).log().sum()
    result = log_volume(generator, torch.randn(5, 3, dtype=torch.float64))
    torch.testing.assert_close(result, expected.detach().expand(5), rtol=1e-12, atol=0)


def test_chunking_does_not_change_log_volumes(mlp):
    generator = mlp([3, 32, 9])
    latents = torch.randn(50, 3, dtype=torch.float64)
    assert torch.equal(log_volume(generator, latents, chunk_size=7), log_volume(generator, latents))


def test_log_volume_agrees_with_singular_values_of_the_jacobian(mlp):
    generator = mlp([4, 48, 48, 10])
    latents = torch.randn(30, 4, dtype=torch.float64)
    expected = torch.linalg.svdvals(jacobian(generator, latents)).log().sum(-1)
    torch.testing.assert_close(log_volume(generator, latents), expected, rtol=1e-12, atol=1e-12)


def test_cache_reuses_one_value_per_tile_and_matches_the_uncached_answer(mlp, monkeypatch):
    import gendebias.geometry.volume as volume

    generator = mlp([2, 8, 8, 3])
    latents = torch.rand(400, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # distinct tiles from the weights: the sign pattern of every hidden unit's pre-activation
    hidden, signs = latents, []
    with torch.no_grad():
        for layer in (generator[0], generator[2]):
            hidden = layer(hidden)
            signs.append(hidden > 0)
            hidden = torch.nn.functional.leaky_relu(hidden, 0.2)
    tiles = torch.unique(torch.cat(signs, dim=1), dim=0).shape[0]
    assert tiles < 100, "many latents share each tile"
    uncached = log_volume(generator, latents)
    jacobians = []
    original = volume.map_jacobians

    def counted(generator, latents, *args, **kwargs):
        jacobians.append(latents.shape[0])
        return original(generator, latents, *args, **kwargs)

    monkeypatch.setattr(volume, "map_jacobians", counted)
    cached = log_volume(generator, latents, cache=True)
    assert sum(jacobians) == tiles, f"{sum(jacobians)} Jacobians for {tiles} tiles"
    torch.testing.assert_close(cached, uncached, rtol=1e-12, atol=1e-12)


def test_cache_is_refused_on_a_smooth_generator():
    generator = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)).double().eval()
    with pytest.raises(InvalidArgumentError, match=r"piecewise-affine.*\['tanh'\]"):
        log_volume(generator, torch.randn(3, 2, dtype=torch.float64), cache=True)


def test_bad_method_and_top_k_are_refused():
    matrix = torch.randn(4, 3, dtype=torch.float64)
    latents = torch.randn(2, 3, dtype=torch.float64)
    expected = r"unknown method 'magic'; choose one of \['exact', 'randomized', 'projection'\]"
    with pytest.raises(InvalidArgumentError, match=expected):
        log_volume(linear(matrix), latents, method="magic")
    with pytest.raises(InvalidArgumentError, match=r"top_k must be an int in \[1, 3\]"):
        log_volume(linear(matrix), latents, top_k=4)
    with pytest.raises(InvalidArgumentError, match="output dimension \\(2\\) is smaller"):
        log_volume(linear(torch.randn(2, 3, dtype=torch.float64)), latents)
    with pytest.raises(InvalidArgumentError, match=r"unknown route 'qr'"):
        log_volume_from_jacobians(torch.randn(1, 4, 3), route="qr")
