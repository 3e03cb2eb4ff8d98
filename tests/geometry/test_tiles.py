import torch
import torch.nn.functional as F
from torch import nn

from gendebias.generators import Ramp
from gendebias.geometry import is_piecewise_affine, jacobian, nonlinearities, tile_codes


def test_same_code_means_same_jacobian_on_a_leaky_relu_mlp(mlp):
    generator = mlp([2, 6, 6, 3], seed=5)
    latents = torch.rand(3000, 2, dtype=torch.float64) * 2 - 1
    codes = tile_codes(generator, latents)
    jacobians = jacobian(generator, latents)
    unique, inverse, counts = torch.unique(codes, return_inverse=True, return_counts=True)
    assert 5 < unique.shape[0] < 200, "a 2-d net with 12 units has tens of tiles in the box"
    assert counts.max() > 100
    first = torch.zeros(unique.shape[0], dtype=torch.long).scatter_(0, inverse, torch.arange(3000))
    representative = jacobians[first]
    assert (jacobians - representative[inverse]).abs().max() < 1e-12
    # and the converse: different codes here really are different tiles (no two tiles share a Jacobian by chance)
    flat = representative.flatten(1)
    distances = torch.cdist(flat, flat) + torch.eye(flat.shape[0], dtype=flat.dtype)
    assert distances.min() > 1e-8


def test_crossing_a_known_hyperplane_changes_the_code():
    torch.manual_seed(6)
    hidden = nn.Linear(2, 5).double()
    generator = nn.Sequential(hidden, nn.ReLU(), nn.Linear(5, 3).double())
    weight, bias = hidden.weight.detach()[0], hidden.bias.detach()[0]
    normal = weight / weight.norm()
    tangent = torch.stack([-normal[1], normal[0]])
    on_plane = -bias * weight / weight.norm() ** 2  # w . z + b = 0 for unit 0
    step = 1e-6
    above, below = on_plane + step * normal, on_plane - step * normal
    points = torch.stack([above, below, above + 1e-7 * tangent])
    codes = tile_codes(generator, points)
    assert codes[0] != codes[1], "the two sides of unit 0's hyperplane are different tiles"
    assert codes[0] == codes[2], "a move along the hyperplane stays in the tile"


def test_functional_activations_inside_forward_are_recorded():
    """Module hooks would miss these; the tile code must not."""

    class Custom(nn.Module):
        def forward(self, z):
            return torch.stack([z[:, 0], torch.abs(z[:, 1]), F.relu(z[:, 0] - z[:, 1])], dim=1)

    latents = torch.tensor([[0.5, 0.2], [0.5, -0.2], [-0.5, 0.2], [0.3, 0.1]], dtype=torch.float64)
    codes = tile_codes(Custom(), latents)
    assert len(set(codes.tolist())) == 4 - 1  # rows 0 and 3 share abs > 0 and z1 > z2
    assert codes[0] == codes[3]
    assert nonlinearities(Custom(), latents).piecewise_linear == ("abs", "relu")


def test_max_pool_argmax_is_part_of_the_code():
    generator = nn.Sequential(nn.Unflatten(1, (1, 1, 4)), nn.MaxPool2d((1, 2)), nn.Flatten())
    latents = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 0.5, 0.3, 3.0], [0.0, 1.0, 0.0, 1.0]])
    codes = tile_codes(generator, latents)
    assert codes[0] == codes[1] != codes[2]


def test_codes_are_stable_across_calls_and_chunks(mlp):
    generator = mlp([3, 16, 16, 4], seed=7)
    latents = torch.randn(40, 3, dtype=torch.float64)
    assert torch.equal(tile_codes(generator, latents), tile_codes(generator, latents, chunk_size=3))


def test_in_place_relu_is_read_before_it_overwrites_its_input():
    generator = nn.Sequential(nn.Linear(2, 4), nn.ReLU(inplace=True), nn.Linear(4, 2)).double().eval()
    latents = torch.randn(200, 2, dtype=torch.float64)
    codes = tile_codes(generator, latents)
    with torch.no_grad():
        pattern = generator[0](latents) > 0
    assert torch.unique(codes).shape[0] == torch.unique(pattern, dim=0).shape[0] > 1


def test_an_affine_generator_is_one_tile():
    generator = nn.Sequential(nn.Linear(2, 5), nn.Linear(5, 3)).double()
    codes = tile_codes(generator, torch.randn(10, 2, dtype=torch.float64))
    assert torch.equal(codes, torch.zeros(10, dtype=torch.int64))


def test_piecewise_affine_detection():
    latents = torch.randn(2, 3)
    conv = nn.Sequential(
        nn.Unflatten(1, (3, 1, 1)), nn.ConvTranspose2d(3, 4, 4), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
        nn.MaxPool2d(2), nn.Conv2d(4, 2, 1), nn.Hardtanh(), nn.ReLU6(), nn.Flatten(), nn.PReLU(),
    ).eval()
    assert is_piecewise_affine(conv, latents)
    assert is_piecewise_affine(Ramp(), torch.randn(2, 2))
    smooth = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh())
    report = nonlinearities(smooth, latents)
    assert report.smooth == ("tanh",) and report.piecewise_linear == ("relu",)
    assert not report.piecewise_affine

    class Quadratic(nn.Module):
        def forward(self, z):
            return z * z

    assert nonlinearities(Quadratic(), latents).smooth == ("mul of two latent-dependent tensors",)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(3))

        def forward(self, z):
            return z * self.gain / 2.0

    assert is_piecewise_affine(Scaled(), latents), "a product with a parameter is affine in the latents"
