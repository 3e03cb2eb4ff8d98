"""A real third-party generator through a spec file, offline: the trained DCGAN-64 face generator that the PyPI wheel
``gan_face_generate==1.1.1`` ships in its package folder (``make third-party`` installs it; ``make test`` does so
first). The spec, ``data/face-dcgan64.toml``, names the wheel's own module class and its checkpoint, read with
``torch.load(weights_only=True)``; nothing is downloaded at run time."""

from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from gendebias.generators import load_generator
from gendebias.geometry import jacobian, log_volume, log_volume_from_jacobians

SPEC = Path(__file__).parent / "data" / "face-dcgan64.toml"

pytestmark = pytest.mark.skipif(find_spec("gan_face_generate") is None,
                                reason="gan_face_generate is not installed; `make third-party` installs it")


@pytest.fixture(scope="module")
def generator():
    return load_generator(SPEC)


def test_the_wheel_loads_through_its_spec_file_with_the_declared_shapes(generator):
    info = generator.info()
    assert (info.latent_shape, info.output_shape, info.kind) == ((100, 1, 1), (3, 64, 64), "gan")
    assert info.smooth_operations == ("tanh",) and not info.piecewise_affine
    assert not generator.module.training, "batch norm runs on the checkpoint's running statistics"


def test_outputs_are_deterministic_images(generator):
    latents = generator.sample_latents(4, seed=0)
    assert torch.equal(latents, generator.sample_latents(4, seed=0))
    with torch.no_grad():
        images = generator(latents)
        assert images.shape == (4, 3, 64, 64) and images.dtype == torch.float32
        assert torch.equal(images, generator(latents))
        assert torch.equal(images, load_generator(SPEC)(latents)), "a second load gives the same trained weights"
    assert images.abs().max() <= 1 and images.std() > 0.1


@pytest.mark.slow  # 1,600 Jacobian-vector products through the DCGAN: 38 s on the shared 2-core CPU
def test_exact_log_volumes_of_16_latents_and_their_spread(generator, record_property):
    latents = generator.sample_latents(16, seed=0)
    jacobians = jacobian(generator, latents)
    values = log_volume_from_jacobians(jacobians)
    assert values.dtype == torch.float64 and bool(values.isfinite().all())
    torch.testing.assert_close(log_volume(generator, latents[:2]), values[:2], rtol=0, atol=1e-9)
    torch.testing.assert_close(values, log_volume_from_jacobians(jacobians, route="svd"), rtol=0, atol=1e-6)
    spread = float(values.std())
    record_property("log_volume_std_nats", spread)
    print(f"face-dcgan64: log-volume mean {float(values.mean()):.2f} nats, std {spread:.2f} nats over 16 latents")
    # measured: mean 56.9, std 23.4 nats; volumes differ by e^23 between typical latents, which is why naive
    # samples of this GAN need reweighting
    assert 15 < spread < 35


@pytest.mark.slow  # about 200 exact log-volumes through the DCGAN: 2-3 minutes on the shared 2-core CPU
def test_the_default_sampler_gives_diverse_latents_under_a_budget_and_says_how_far_it_got(generator):
    from gendebias.geometry import sample

    result = sample(generator, 16, seed=0, max_evaluations=200)
    print(f"face-dcgan64 default path: {result.choice}; {result.sampler} reached beta {result.beta:.3g} "
          f"({result.stopped}), ESS {result.ess:.1f}, distinct {result.distinct} of 16, {result.evaluations} "
          f"evaluations")
    assert result.choice.startswith("smc: pilot of 16") and "collapse" in result.choice
    assert result.latents.shape == (16, 100, 1, 1) and result.distinct >= 0.9 * 16
    assert result.evaluations <= 200 and 0.0 <= result.beta <= 1.0
    if result.stopped != "done":
        assert result.beta < 1.0 and any(f"beta = {result.beta:.3g}" in w for w in result.warnings)
