import importlib

import pytest
import torch
from torch import nn

from gendebias.errors import GeneratorModeError, InvalidArgumentError, NumericalError
from gendebias.geometry import jacobian

jacobian_module = importlib.import_module("gendebias.geometry.jacobian")


def central_differences(function, latents, step=1e-6):
    """(N, D, d) Jacobian by central differences on flattened latents, one column at a time."""
    flat = latents.flatten(1)
    columns = []
    for j in range(flat.shape[1]):
        offset = torch.zeros_like(flat)
        offset[:, j] = step
        plus = function((flat + offset).reshape(latents.shape)).flatten(1)
        minus = function((flat - offset).reshape(latents.shape)).flatten(1)
        columns.append((plus - minus) / (2 * step))
    return torch.stack(columns, dim=-1)


def test_linear_map_jacobian_is_the_matrix_in_both_modes():
    torch.manual_seed(1)
    matrix = torch.randn(7, 4, dtype=torch.float64)
    latents = torch.randn(5, 4, dtype=torch.float64)
    for mode in ("forward", "reverse", "auto"):
        result = jacobian(lambda z: z @ matrix.T, latents, mode=mode)
        assert result.shape == (5, 7, 4)
        torch.testing.assert_close(result, matrix.expand(5, 7, 4), rtol=0, atol=1e-14)


def test_forward_and_reverse_agree_on_a_leaky_relu_mlp(mlp):
    generator = mlp([3, 32, 32, 10])
    latents = torch.randn(16, 3, dtype=torch.float64)
    forward = jacobian(generator, latents, mode="forward")
    reverse = jacobian(generator, latents, mode="reverse")
    assert (forward - reverse).abs().max() < 1e-13


def test_matches_finite_differences_on_a_leaky_relu_mlp(mlp):
    generator = mlp([4, 64, 64, 12])
    latents = torch.randn(20, 4, dtype=torch.float64)
    with torch.no_grad():
        expected = central_differences(generator, latents)
    assert (jacobian(generator, latents) - expected).abs().max() < 1e-6


def test_image_shaped_latents_flatten_row_major():
    torch.manual_seed(2)
    generator = nn.Sequential(nn.ConvTranspose2d(2, 3, 3), nn.LeakyReLU(0.1), nn.Conv2d(3, 1, 2)).double().eval()
    latents = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    result = jacobian(generator, latents)
    assert result.shape == (3, 9, 8)
    with torch.no_grad():
        expected = central_differences(generator, latents)
    assert (result - expected).abs().max() < 1e-6


def test_chunks_bound_the_batch_and_do_not_change_the_answer(mlp, monkeypatch):
    generator = mlp([3, 16, 8])
    latents = torch.randn(23, 3, dtype=torch.float64)
    whole = jacobian(generator, latents, chunk_size=100)
    seen = []
    original = jacobian_module.jacobian_block

    def spy(generator, chunk, run):
        seen.append(chunk.shape[0])
        return original(generator, chunk, run)

    monkeypatch.setattr(jacobian_module, "jacobian_block", spy)
    chunked = jacobian(generator, latents, chunk_size=5)
    assert seen == [5, 5, 5, 5, 3]
    assert torch.equal(whole, chunked)


def test_eval_mode_batch_norm_works_and_training_mode_is_refused():
    torch.manual_seed(3)
    generator = nn.Sequential(nn.Linear(2, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 4)).double()
    generator[1].running_mean.uniform_(-1, 1)
    generator[1].running_var.uniform_(0.5, 2)
    latents = torch.randn(6, 2, dtype=torch.float64)
    with pytest.raises(GeneratorModeError, match=r"training mode \(1\).*generator.eval\(\)"):
        jacobian(generator, latents)
    assert generator.training, "the caller's module must not be switched to eval mode behind their back"
    generator.eval()
    with torch.no_grad():
        expected = central_differences(generator, latents)
    assert (jacobian(generator, latents) - expected).abs().max() < 1e-6


@pytest.mark.parametrize(
    ("latents", "message"),
    [
        (torch.randn(4), r"shape \(N, \*latent_shape\)"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]], dtype=torch.float64),
         r"NaN or infinite values in 1 rows \(first: \[0\]\)"),
        (torch.ones(3, 2, dtype=torch.int64), "floating"),
        (torch.ones(3, 2, dtype=torch.float32), "dtype torch.float32 but the generator's parameters are torch.float64"),
    ],
)
def test_bad_latents_get_a_clear_error(mlp, latents, message):
    with pytest.raises(InvalidArgumentError, match=message):
        jacobian(mlp([2, 4, 3]), latents)


def test_bad_knobs_are_refused(mlp):
    latents = torch.randn(2, 2, dtype=torch.float64)
    expected = r"unknown mode 'sideways'; choose one of \['auto', 'forward', 'reverse'\]"
    with pytest.raises(InvalidArgumentError, match=expected):
        jacobian(mlp([2, 3]), latents, mode="sideways")
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        jacobian(mlp([2, 3]), latents, chunk_size=0)


def test_non_finite_generator_output_names_the_latents():
    latents = torch.tensor([[1.0, 2.0], [-1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    with pytest.raises(NumericalError, match=r"1 latents \(first rows: \[1\]\)"):
        jacobian(lambda z: torch.sqrt(z), latents)


def test_empty_batch_gives_an_empty_jacobian(mlp):
    result = jacobian(mlp([2, 5]), torch.zeros(0, 2, dtype=torch.float64))
    assert result.shape == (0, 5, 2)


class SquareWithoutJvp(torch.autograd.Function):
    """``x ** 2`` with a backward but no forward-mode rule, like many custom CUDA ops."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def test_an_op_without_a_forward_rule_falls_back_to_reverse_mode_or_says_so():
    matrix = torch.randn(6, 3, dtype=torch.float64)
    latents = torch.randn(4, 3, dtype=torch.float64)

    def generator(z):
        return SquareWithoutJvp.apply(z @ matrix.T)

    expected = 2 * (latents @ matrix.T)[:, :, None] * matrix
    torch.testing.assert_close(jacobian(generator, latents), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match=r"without a forward-mode derivative.*mode='reverse'"):
        jacobian(generator, latents, mode="forward")
