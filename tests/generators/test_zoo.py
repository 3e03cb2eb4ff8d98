"""The digits zoo: committed weights, data split, PNG grids and balance measurements (no retraining here)."""

from __future__ import annotations

import math
import struct
import zlib

import pytest
import torch
from torch import nn

from gendebias.generators.zoo.evaluation import class_histogram, kl_to_uniform, mean_confidence
from gendebias.generators.zoo.grid import PNG_SIGNATURE, grid_size, write_png_grid
from gendebias.generators.zoo.models import (
    WEIGHTS_DIR,
    WEIGHTS_FILES,
    DigitsClassifier,
    DigitsDecoder,
    DigitsGAN,
    DigitsMLPClassifier,
    load_pretrained,
    read_checksums,
    sha256_of,
)

safetensors_torch = pytest.importorskip("safetensors.torch", reason="the zoo's weights are safetensors files")

MODELS = {"gan": (DigitsGAN, 16), "vae": (DigitsDecoder, 8), "classifier": (DigitsClassifier, None),
          "mlp-classifier": (DigitsMLPClassifier, None)}
PIECEWISE_AFFINE = (nn.Sequential, nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d,
                    nn.ReLU, nn.LeakyReLU, nn.Unflatten, nn.Flatten)


def test_sha256sums_list_every_weights_file_and_match():
    checksums = read_checksums()
    assert set(checksums) == set(WEIGHTS_FILES.values())
    for name, digest in checksums.items():
        assert sha256_of(WEIGHTS_DIR / name) == digest, name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_load_strictly(name):
    cls, latent_dim = MODELS[name]
    model = cls() if latent_dim is None else cls(latent_dim=latent_dim)
    model.load_state_dict(safetensors_torch.load_file(str(WEIGHTS_DIR / WEIGHTS_FILES[name])), strict=True)
    loaded = load_pretrained(name)
    assert isinstance(loaded, cls)
    assert not loaded.training


def test_weights_stay_small():
    assert sum((WEIGHTS_DIR / file).stat().st_size for file in WEIGHTS_FILES.values()) < 3_000_000


def test_load_pretrained_refuses_a_tampered_file(tmp_path):
    for file in [*WEIGHTS_FILES.values(), "SHA256SUMS"]:
        (tmp_path / file).write_bytes((WEIGHTS_DIR / file).read_bytes())
    (tmp_path / WEIGHTS_FILES["gan"]).write_bytes(b"not the committed weights")
    with pytest.raises(ValueError, match="SHA256SUMS"):
        load_pretrained("gan", weights_dir=tmp_path)
    with pytest.raises(ValueError, match="one of"):
        load_pretrained("dcgan")


@pytest.mark.parametrize("name", ["gan", "vae"])
def test_generators_map_latents_to_images_deterministically(name):
    generator = load_pretrained(name)
    latents = torch.randn(5, MODELS[name][1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = generator(latents), generator(latents)
    assert first.shape == (5, 1, 8, 8)
    assert first.dtype == torch.float32
    assert torch.equal(first, second)
    alone = generator(latents[:1]).detach()  # eval-mode batch norm: no coupling between the rows of a batch
    torch.testing.assert_close(alone, first[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [DigitsGAN, DigitsDecoder])
def test_generators_are_built_from_piecewise_affine_layers_only(cls):
    odd = [type(module).__name__ for module in cls().modules()
           if not isinstance(module, (cls, *PIECEWISE_AFFINE))]
    assert odd == []


@pytest.mark.parametrize("name", ["classifier", "mlp-classifier"])
def test_classifier_scores_at_least_95_percent_on_the_test_split(name):
    pytest.importorskip("sklearn", reason="the digits data ship with scikit-learn")
    from gendebias.generators.zoo.data import digits

    images, labels = digits(split="test")
    classifier = load_pretrained(name)
    with torch.no_grad():
        accuracy = (classifier(images).argmax(dim=1) == labels).double().mean().item()
    assert accuracy >= 0.95
    assert mean_confidence(images, classifier) > 0.9


def test_data_splits_partition_the_1797_digits():
    pytest.importorskip("sklearn", reason="the digits data ship with scikit-learn")
    from gendebias.generators.zoo.data import digits

    images, labels = digits(split="all")
    train_images, train_labels = digits(split="train")
    test_images, test_labels = digits(split="test")
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32 and labels.dtype == torch.int64
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert len(train_images) + len(test_images) == 1797
    assert 340 <= len(test_images) <= 380
    counts = torch.bincount(labels, minlength=10)
    assert bool(((counts >= 150) & (counts <= 200)).all())
    assert torch.equal(torch.bincount(train_labels, minlength=10) + torch.bincount(test_labels, minlength=10), counts)
    assert bool((torch.bincount(test_labels, minlength=10) >= 30).all())  # stratified
    assert torch.equal(digits(split="test")[0], test_images)  # seeded
    assert not torch.equal(digits(split="test", seed=1)[0], test_images)
    with pytest.raises(ValueError, match="split must be one of"):
        digits(split="validation")


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_write_png_grid_writes_a_valid_grayscale_png(tmp_path):
    images = torch.full((3, 1, 2, 3), -1.0)
    images[0, 0, 0, 0] = 5.0  # clamped to 1 -> 255
    path = tmp_path / "grid.png"
    write_png_grid(images, path, columns=2, scale=2)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks = _png_chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height) == grid_size(3, 2, 3, columns=2, scale=2) == (2 * (3 * 2 + 1) + 1, 2 * (2 * 2 + 1) + 1)
    assert (depth, color) == (8, 0)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == height * (width + 1)
    rows = [raw[row * (width + 1) + 1 : (row + 1) * (width + 1)] for row in range(height)]
    assert rows[0] == bytes([128] * width)  # frame
    assert rows[1][1:3] == bytes([255, 255]) and rows[2][1:3] == bytes([255, 255])  # the clamped pixel, upscaled
    assert rows[1][3] == 0  # background -1 -> 0
    assert rows[6][8:15] == bytes([128] * 7)  # the unused fourth cell stays gray


def test_write_png_grid_explains_a_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        write_png_grid(torch.zeros(4, 64), tmp_path / "grid.png")


def test_kl_to_uniform_of_uniform_and_one_hot_histograms():
    assert kl_to_uniform(torch.full((10,), 7)) == pytest.approx(0.0, abs=1e-12)
    assert kl_to_uniform(torch.nn.functional.one_hot(torch.tensor(3), 10)) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match="positive sum"):
        kl_to_uniform(torch.zeros(10))


def test_class_histogram_counts_every_image_and_refuses_training_mode():
    classifier = load_pretrained("classifier")
    images = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    histogram = class_histogram(images, classifier, batch_size=16)
    assert histogram.shape == (10,) and histogram.dtype == torch.int64 and int(histogram.sum()) == 50
    with pytest.raises(ValueError, match="eval"):
        class_histogram(images, classifier.train())
