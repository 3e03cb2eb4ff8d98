"""Per-class debiasing of a conditional generator, in process (``condition(label)``) and through the server's
``label`` field: each class is weighted and resampled on its own, so each keeps its own exact area share."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gendebias.clients import Client
from gendebias.generators import Generator, UniformBox
from gendebias.geometry import sample
from gendebias.service.testing import running_server

SLOPES = (0.0, 1.0, 4.0)
DRAWS = 2000


class ClassRamp(nn.Module):
    """``G(z, y) = (z1, z2, a_y relu(z1))`` on ``[-1, 1]^2``: class ``y``'s ramp ``z1 > 0`` has log-volume
    ``1/2 log(1 + a_y^2)`` and holds the share ``s / (s + 1)``, ``s = sqrt(1 + a_y^2)``, of its surface area."""

    def __init__(self) -> None:
        super().__init__()
        self.slopes = nn.Parameter(torch.tensor(SLOPES, dtype=torch.float64), requires_grad=False)

    def forward(self, latents, labels):
        return torch.cat([latents, self.slopes[labels][:, None] * torch.relu(latents[:, :1])], dim=1)


def ramp_share(label):
    stretch = math.sqrt(1 + SLOPES[label] ** 2)
    return stretch / (stretch + 1)


def assert_ramp_share(latents, label, ess):
    exact = ramp_share(label)
    error = math.sqrt(exact * (1 - exact) * (1 / latents.shape[0] + 1 / ess))
    share = float((latents[:, 0] > 0).sum()) / latents.shape[0]
    assert abs(share - exact) < 3 * error, f"class {label}: ramp share {share:.4f}, exact {exact:.4f}"


@pytest.fixture(scope="module")
def generator():
    return Generator(ClassRamp(), latent_shape=(2,), classes=len(SLOPES), prior=UniformBox(), name="class-ramp")


@pytest.fixture(scope="module")
def client(generator):
    with running_server(generators={"class-ramp": generator}) as target, Client(target) as connected:
        yield connected


@pytest.mark.parametrize("label", range(len(SLOPES)))
def test_per_class_normalisation_keeps_every_class(generator, client, label):
    """Every class gets its own n draws at its own exact share, where one normalisation over the pooled classes
    would give the classes draws in proportion to their total volume."""
    local = sample(generator.condition(label), DRAWS, sampler="sir", seed=label)
    assert local.latents.shape == (DRAWS, 2)
    assert_ramp_share(local.latents, label, local.ess)
    remote = client.resample("class-ramp", DRAWS, label=label, sampler="sir", seed=label)
    assert remote.latents.shape == (DRAWS, 2)
    assert_ramp_share(remote.latents, label, remote.ess)


def test_reweight_with_a_label_weights_within_that_class(client):
    latents = np.random.default_rng(0).uniform(-1.0, 1.0, (200, 2))
    for label in range(len(SLOPES)):
        result = client.reweight("class-ramp", latents, label=label)
        volumes = np.where(latents[:, 0] > 0, 0.5 * math.log1p(SLOPES[label] ** 2), 0.0)
        np.testing.assert_allclose(result.log_volumes, volumes, atol=1e-12)
        np.testing.assert_allclose(result.log_weights, volumes - np.logaddexp.reduce(volumes), atol=1e-12)
