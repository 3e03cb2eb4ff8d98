"""The digits zoo's networks and their committed weights.

Shipped (weights in ``weights/``): ``DigitsGAN`` and ``DigitsDecoder`` map latents ``(N, latent_dim)`` to images
``(N, 1, 8, 8)`` in roughly ``[-1, 1]``; ``DigitsClassifier`` (a conv net) and ``DigitsMLPClassifier`` (an MLP on
raw pixels) map images to ``(N, 10)`` logits, and :func:`digits_ensemble_class_probabilities` averages their softmax
probabilities (the classifier the digits generators carry for target ``balanced``). Both generators are
continuous piecewise affine in eval mode (linear / transposed-conv / conv layers, eval-mode batch norm, ReLU or
LeakyReLU, reshapes; linear output with no tanh), so their Jacobian is constant on each tile
(``docs/design.md#tiles-and-tile-codes``).
Training-only (weights not shipped): ``DigitsEncoder`` (the VAE's encoder) and ``DigitsDiscriminator``.

``load_pretrained("gan" | "vae" | "classifier" | "mlp-classifier")`` checks the file against
``weights/SHA256SUMS`` and returns the model in eval mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from gendebias.errors import GeneratorSpecError, InvalidArgumentError
from gendebias.generators.spec import load_weights, sha256_of

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Folder of the committed weights, sample grids and ``SHA256SUMS``."""

Pretrained = Literal["gan", "vae", "classifier", "mlp-classifier"]
WEIGHTS_FILES: dict[str, str] = {
    "gan": "digits-gan.safetensors",
    "vae": "digits-vae.safetensors",
    "classifier": "digits-classifier.safetensors",
    "mlp-classifier": "digits-mlp-classifier.safetensors",
}
"""File name of each shipped model in ``WEIGHTS_DIR`` (the VAE file holds the decoder only)."""


class DigitsGAN(nn.Module):
    """DCGAN-style generator ``(N, latent_dim) -> (N, 1, 8, 8)``, prior ``z ~ N(0, I)``.

    ``Linear -> BN -> ReLU -> (128, 2, 2) -> ConvT 4x4/2 -> BN -> ReLU -> (64, 4, 4) -> ConvT 4x4/2 -> BN -> ReLU
    -> (32, 8, 8) -> Conv 3x3 -> (1, 8, 8)``, linear output. Use it in eval mode (batch norm as a fixed affine map).
    """

    def __init__(self, *, latent_dim: int = 16) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128 * 2 * 2, bias=False),
            nn.BatchNorm1d(128 * 2 * 2),
            nn.ReLU(),
            nn.Unflatten(1, (128, 2, 2)),
            nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=3, padding=1),
        )

    def forward(self, latents: Tensor) -> Tensor:
        """``(N, latent_dim) -> (N, 1, 8, 8)``."""
        return self.net(latents)


class DigitsDecoder(nn.Module):
    """VAE decoder (the mean of a Gaussian likelihood) ``(N, latent_dim) -> (N, 1, 8, 8)``, prior ``z ~ N(0, I)``.

    MLP ``latent_dim -> 256 -> 256 -> 64`` with LeakyReLU(0.2) between layers, linear output.
    """

    def __init__(self, *, latent_dim: int = 8) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 64),
            nn.Unflatten(1, (1, 8, 8)),
        )

    def forward(self, latents: Tensor) -> Tensor:
        """``(N, latent_dim) -> (N, 1, 8, 8)``."""
        return self.net(latents)


class DigitsEncoder(nn.Module):
    """VAE encoder (training only) ``(N, 1, 8, 8) -> (mean, log_variance)``, each ``(N, latent_dim)``."""

    def __init__(self, *, latent_dim: int = 8) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 2 * latent_dim),
        )

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 1, 8, 8) -> ((N, latent_dim), (N, latent_dim))``."""
        mean, log_variance = self.net(images).chunk(2, dim=1)
        return mean, log_variance


class DigitsDiscriminator(nn.Module):
    """GAN discriminator (training only) ``(N, 1, 8, 8) -> (N,)`` logits of "real": MLP ``64 -> 512 -> 256 -> 1``
    with LeakyReLU(0.2) (an MLP is ample for 8x8 images and several times cheaper than a conv net on a CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 1, 8, 8) -> (N,)``."""
        return self.net(images).squeeze(1)


class DigitsClassifier(nn.Module):
    """Digit classifier ``(N, 1, 8, 8) -> (N, 10)`` logits: three 3x3 convs with ReLU and two 2x2 max-pools,
    dropout (training only) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 2 * 2, 10),
        )

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 1, 8, 8) -> (N, 10)``."""
        return self.net(images)


class DigitsMLPClassifier(nn.Module):
    """Digit classifier ``(N, 1, 8, 8) -> (N, 10)`` logits on raw pixels: ``Flatten -> Linear(64, 256) -> ReLU ->
    Linear(256, 10)``. Trained differently from :class:`DigitsClassifier` (no convolutions, no shift augmentation), so
    that the two err differently on ambiguous images."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 1, 8, 8) -> (N, 10)``."""
        return self.net(images)


class MeanProbabilities(nn.Module):
    """An ensemble's class probabilities: ``(N, ...) -> (N, C)``, the mean of its members' softmax outputs.

    Averaging classifiers with different inductive biases is the deep-ensemble recipe of Lakshminarayanan, Pritzel
    and Blundell, "Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles", NeurIPS 2017: on
    inputs away from the training data (blurry, ambiguous generated digits) a single network is confidently wrong
    in its own way, while the members' average spreads the probability where they disagree.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise InvalidArgumentError("an ensemble needs at least one member classifier")
        self.members = nn.ModuleList(members)

    def forward(self, images: Tensor) -> Tensor:
        return torch.stack([torch.softmax(member(images), dim=1) for member in self.members]).mean(dim=0)


class Probabilities(nn.Module):
    """A classifier's softmax: ``(N, ...) -> (N, C)`` probabilities from a module returning logits."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:
        return torch.softmax(self.classifier(images), dim=1)


def digits_class_probabilities() -> nn.Module:
    """The shipped digit classifier as ``(N, 1, 8, 8)`` images -> ``(N, 10)`` probabilities, in eval mode: the
    built-in ``classifier = "digits"`` of generator specs (``digits-gan`` and ``digits-vae`` carry it)."""
    return Probabilities(load_pretrained("classifier")).eval()


def digits_ensemble_class_probabilities() -> nn.Module:
    """The mean of the shipped conv-net and MLP digit classifiers' probabilities, ``(N, 1, 8, 8)`` images ->
    ``(N, 10)``, in eval mode: the built-in ``classifier = "digits-ensemble"`` that ``digits-gan`` and ``digits-vae``
    carry. Balancing its classes also balances those of a classifier outside the ensemble far better than balancing
    either member's (``docs/evaluation.md#balanced-target-on-digits-gan``)."""
    return MeanProbabilities([load_pretrained("classifier"), load_pretrained("mlp-classifier")]).eval()


def read_checksums(weights_dir: Path = WEIGHTS_DIR) -> dict[str, str]:
    """``{file name: sha256}`` from ``weights_dir / "SHA256SUMS"`` (``sha256sum`` format: ``<hex>  <name>``)."""
    path = weights_dir / "SHA256SUMS"
    if not path.is_file():
        raise GeneratorSpecError(f"{path} is missing; run `python -m gendebias.generators.zoo.train` to write it")
    checksums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            checksums[name.lstrip("*")] = digest
    return checksums


def load_pretrained(name: Pretrained, *, weights_dir: Path = WEIGHTS_DIR) -> nn.Module:
    """The shipped model ``name`` (``"gan"``, ``"vae"`` decoder, ``"classifier"`` or ``"mlp-classifier"``) in eval
    mode, on the CPU, float32, after checking its file against ``SHA256SUMS``."""
    if name not in WEIGHTS_FILES:
        raise InvalidArgumentError(f"name must be one of {get_args(Pretrained)}, got {name!r}")
    from safetensors import safe_open

    path = weights_dir / WEIGHTS_FILES[name]
    expected = read_checksums(weights_dir).get(path.name)
    if expected is None or not path.is_file() or sha256_of(path) != expected:
        raise GeneratorSpecError(
            f"{path} is missing or does not match SHA256SUMS; restore it from git or retrain with "
            f"`python -m gendebias.generators.zoo.train --only {name}`"
        )
    with safe_open(str(path), framework="pt") as handle:
        config = json.loads((handle.metadata() or {}).get("config", "{}"))
    model: nn.Module
    if name == "gan":
        model = DigitsGAN(latent_dim=int(config.get("latent_dim", 16)))
    elif name == "vae":
        model = DigitsDecoder(latent_dim=int(config.get("latent_dim", 8)))
    elif name == "mlp-classifier":
        model = DigitsMLPClassifier()
    else:
        model = DigitsClassifier()
    load_weights(model, path, owner=f"zoo model {name!r}")
    return model.eval()
