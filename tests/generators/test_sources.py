"""Every source a user can point at loads, has the declared shapes, and runs through log_volume."""

import textwrap

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from gendebias.errors import GeneratorSpecError, UnknownGeneratorError
from gendebias.generators import builtin_registry, load_generator, load_registry
from gendebias.geometry import jacobian, log_volume, log_volume_estimate

FACTORY_MODULE = '''
import torch
from torch import nn


def make_generator(latent_dim=4, width=16):
    return nn.Sequential(nn.Linear(latent_dim, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2),
                         nn.Linear(width, 2 * 3 * 3), nn.Unflatten(1, (2, 3, 3)))
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    """An importable module ``user_nets`` with a factory, and trained-looking weights for it."""
    (tmp_path / "user_nets.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.LeakyReLU(0.2), nn.Linear(16, 18),
                              nn.Unflatten(1, (2, 3, 3)))
    reference[1].running_var.uniform_(0.5, 2.0)
    return tmp_path, reference.eval()


def write_spec(folder, text):
    path = folder / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_torch_factory_with_weights(factory, suffix):
    folder, reference = factory
    if suffix == ".safetensors":
        save_file(reference.state_dict(), str(folder / f"g{suffix}"))
    else:
        torch.save(reference.state_dict(), folder / f"g{suffix}")
    spec = write_spec(folder, f"""
        source = "torch"
        factory = "user_nets:make_generator"
        weights = "g{suffix}"
        latent_shape = [4]
        kind = "gan"
    """)
    generator = load_generator(spec)
    assert generator.output_shape == (2, 3, 3) and generator.latent_shape == (4,) and generator.piecewise_affine
    latents = generator.sample_latents(5, seed=0)
    assert torch.equal(generator(latents), reference(latents)), "the weights, including batch-norm buffers, loaded"
    assert not generator.module.training
    assert log_volume(generator, latents).isfinite().all()


def test_weights_inside_an_installed_package_under_a_checkpoint_key(factory, monkeypatch):
    """A wheel that ships ``{"netG_state_dict": ...}`` in its package folder loads through a spec elsewhere."""
    folder, reference = factory
    package = folder / "site" / "face_wheel"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the spec must not import the package')\n")
    torch.save({"netG_state_dict": reference.state_dict(), "epoch": 5}, package / "weights.tar")
    monkeypatch.syspath_prepend(str(folder / "site"))
    specs = folder / "specs"
    specs.mkdir()
    body = """
        source = "torch"
        factory = "user_nets:make_generator"
        package = "face_wheel"
        weights = "weights.tar"
        weights_key = "{key}"
        latent_shape = [4]
    """
    generator = load_generator(write_spec(specs, body.format(key="netG_state_dict")))
    latents = generator.sample_latents(3, seed=0)
    assert torch.equal(generator(latents), reference(latents))
    entries = r"no state dict under weights_key 'netD'; its top-level entries are \['epoch', 'netG_state_dict'\]"
    with pytest.raises(GeneratorSpecError, match=entries):
        load_generator(write_spec(specs, body.format(key="netD")))
    with pytest.raises(GeneratorSpecError, match="package 'no_such_wheel', which is not installed"):
        load_generator(write_spec(specs, body.format(key="netG_state_dict").replace("face_wheel", "no_such_wheel")))


def test_torchscript_file(tmp_path):
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 6)).eval()
    torch.jit.script(module).save(str(tmp_path / "g.pt"))
    spec = write_spec(tmp_path, """
        source = "torchscript"
        path = "g.pt"
        latent_shape = [3]
    """)
    generator = load_generator(spec)
    latents = generator.sample_latents(4, seed=0)
    assert generator.output_shape == (6,)
    torch.testing.assert_close(log_volume(generator, latents), log_volume(module, latents))
    assert not generator.piecewise_affine, "TorchScript is opaque to inspection: never assumed piecewise affine"


def tiny_autoencoder(kind):
    from diffusers import AutoencoderKL, VQModel

    common = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                  latent_channels=2, norm_num_groups=4, sample_size=8)
    torch.manual_seed(2)
    if kind == "kl":
        return AutoencoderKL(**common)
    return VQModel(**common, num_vq_embeddings=16, vq_embed_dim=2)


@pytest.mark.parametrize("kind", ["kl", "vq"])
def test_diffusers_decoder_folder(tmp_path, kind):
    autoencoder = tiny_autoencoder(kind)
    autoencoder.save_pretrained(str(tmp_path / "vae"))
    generator = load_generator(tmp_path / "vae")
    assert generator.kind == "vae" and generator.latent_shape == (2, 4, 4) and generator.output_shape == (3, 8, 8)
    assert not generator.piecewise_affine and "silu" in generator.info().smooth_operations
    latents = generator.sample_latents(2, seed=0)
    with torch.no_grad():
        scale = autoencoder.config.scaling_factor
        expected = (autoencoder.decode(latents / scale).sample if kind == "kl"
                    else autoencoder.decode(latents / scale, force_not_quantize=True).sample)
    torch.testing.assert_close(generator(latents), expected)
    volumes = log_volume(generator, latents)  # forward mode through attention: plain processor, no SDPA
    assert volumes.isfinite().all()
    assert jacobian(generator, latents[:1]).abs().max() > 0, "a quantising VQ decoder would have J = 0"


def test_estimators_run_through_a_diffusers_decoder(tmp_path):
    """Randomized SVD needs VJPs, whose GroupNorm backward refuses vmap with grad off here: the products switch
    to vmap with grad on and still agree with the exact top-k."""
    tiny_autoencoder("kl").save_pretrained(str(tmp_path / "vae"))
    generator = load_generator(tmp_path / "vae")
    latents = generator.sample_latents(2, seed=1)
    exact = log_volume_estimate(generator, latents, top_k=6)
    randomized = log_volume_estimate(generator, latents, method="randomized", top_k=6, oversampling=10)
    gap = exact.log_volume - randomized.log_volume
    assert ((gap >= -1e-6) & (gap <= randomized.error)).all() and gap.max() < 0.01  # measured 3e-4, reported 0.01
    projected = log_volume_estimate(generator, latents, method="projection", top_k=6)
    assert ((projected.log_volume - exact.log_volume).abs() < 5 * projected.error).all()


def test_diffusers_decoder_through_a_spec_file(tmp_path):
    tiny_autoencoder("kl").save_pretrained(str(tmp_path / "vae"))
    spec = write_spec(tmp_path, """
        source = "diffusers"
        path = "vae"
        prior = { name = "truncated_normal", bound = 2.0 }
        description = "tiny"
    """)
    generator = load_generator(spec)
    assert generator.info().prior == {"name": "truncated_normal", "bound": 2.0}
    assert generator.sample_latents(100, seed=0).abs().max() <= 2.0


def test_builtin_ids_load_and_a_registry_file_names_generators(tmp_path):
    assert {"ramp", "parabola", "tent"} <= set(builtin_registry())
    assert load_generator("ramp").piecewise_affine
    registry_file = tmp_path / "registry.toml"
    registry_file.write_text(textwrap.dedent("""
        [generators.my-ramp]
        source = "torch"
        factory = "gendebias.generators.toys:Ramp"
        kwargs = { slope = 1.0 }
        dtype = "float64"
        prior = "uniform"
    """))
    registry = load_registry(registry_file)
    assert list(registry) == ["my-ramp"]
    assert registry["my-ramp"] is registry["my-ramp"], "built once, then kept"
    assert load_generator(registry_file).name == "my-ramp"
    with pytest.raises(UnknownGeneratorError, match=r"unknown generator 'nope'; known generators: \['my-ramp'\]"):
        registry["nope"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('source = "torch"\nfactory = "user_nets:missing"\nlatent_shape = [4]',
         "'user_nets' has no callable 'missing'"),
        ('source = "torch"\nfactory = "no_such_pkg.nets:make"', "cannot import 'no_such_pkg.nets'"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nweights = "absent.safetensors"\nlatent_shape = [4]',
         "absent.safetensors does not exist"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nkwargs = { width = 8 }\n'
         'weights = "g.safetensors"\nlatent_shape = [4]', r"weights g.safetensors do not fit: .*size mismatch"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nweights = "g.safetensors"\nsha256 = "00"\n'
         'latent_shape = [4]', "has sha256 .* the spec expects 00"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nlatent_shape = [7]', "Check latent_shape"),
        ('source = "torch"\nfactory = "user_nets:make_generator"', "add latent_shape"),
        ('source = "onnx"\npath = "g.onnx"', r"source must be one of \['torch', 'torchscript', 'diffusers'\]"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nlatent_dims = [4]',
         r"unknown keys \['latent_dims'\]"),
        ('source = "torchscript"\npath = "spec.toml"\nlatent_shape = [4]', "is not a TorchScript file"),
        ('source = "torch"\nfactory = "user_nets:make_generator"\nlatent_shape = [4]\nkind = "flow"',
         r"kind must be one of \['gan', 'vae'\]"),
        ('source = "torch" factory', "is not valid TOML"),
    ],
)
def test_bad_specs_name_the_fix(factory, spec, message):
    folder, reference = factory
    save_file(reference.state_dict(), str(folder / "g.safetensors"))
    with pytest.raises(GeneratorSpecError, match=message):
        load_generator(write_spec(folder, spec))


def test_unknown_sources_are_lookup_errors(tmp_path):
    with pytest.raises(UnknownGeneratorError, match=r"not a built-in generator .*'ramp'.* no such file"):
        load_generator("digits-gann")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(GeneratorSpecError, match="neither a spec file"):
        load_generator(tmp_path / "weights.bin")


@pytest.mark.parametrize(("id", "latent_dim", "kind"), [("digits-gan", 16, "gan"), ("digits-vae", 8, "vae")])
def test_builtin_digits_generators_load_by_id(id, latent_dim, kind):
    from gendebias.generators.zoo.models import read_checksums

    generator = load_generator(id)
    spec = builtin_registry().specs[id]
    assert spec.sha256 == read_checksums()[spec.weights.name], "registry and SHA256SUMS name the same file"
    assert (generator.latent_shape, generator.output_shape, generator.kind) == ((latent_dim,), (1, 8, 8), kind)
    assert generator.piecewise_affine
    volumes = log_volume(generator, generator.sample_latents(8, seed=0))
    assert volumes.shape == (8,) and volumes.isfinite().all()


def test_parameterless_toys_take_the_spec_dtype():
    ramp = load_generator("ramp")
    assert ramp.dtype == torch.float64 and ramp.sample_latents(3, seed=0).dtype == torch.float64
    assert ramp.info().dtype == "float64"
