"""Reproduce the digits zoo: ``python -m gendebias.generators.zoo.train [--out DIR] [--only gan vae classifier
mlp-classifier]``.

Trains, on the ``train`` split of scikit-learn's digits (CPU, 2 threads, seeded, deterministic algorithms):

* the classifier (cross-entropy, Adam, random 1-pixel shifts), then reports its ``test`` accuracy;
* the MLP classifier (cross-entropy, Adam, no augmentation: a second opinion that errs differently), then its
  ``test`` accuracy;
* the GAN (non-saturating loss, Adam(2e-4, betas 0.5/0.999), spectrally normalised discriminator, an exponential
  moving average of the generator's weights, batch-norm statistics re-estimated on the averaged weights at the end);
* the VAE (Gaussian likelihood on ``[-1, 1]`` pixels with one learned scale; the decoder output is the mean).

Each model is saved with safetensors in ``--out`` (default: the package's ``weights/``), ``SHA256SUMS`` is
rewritten, and 64 prior samples (seed 0) of each generator go to a PNG grid. Finally the naive-sampling bias is
measured: ``--samples`` latents ``z ~ N(0, I)`` (seeded) are generated and classified, and the class histogram,
its KL to uniform and the mean classifier confidence are printed, next to the same numbers for the real test split.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gendebias.generators.zoo.data import digits
from gendebias.generators.zoo.evaluation import balance_table, class_histogram, kl_to_uniform, mean_confidence
from gendebias.generators.zoo.grid import write_png_grid
from gendebias.generators.zoo.models import (
    WEIGHTS_DIR,
    WEIGHTS_FILES,
    DigitsClassifier,
    DigitsDecoder,
    DigitsDiscriminator,
    DigitsEncoder,
    DigitsGAN,
    DigitsMLPClassifier,
    load_pretrained,
    sha256_of,
)

DEFAULT_STEPS = {"classifier": 2000, "mlp-classifier": 3000, "gan": 8000, "vae": 10000}
GAN_LATENT_DIM = 16
VAE_LATENT_DIM = 8


def batches(count: int, *, batch_size: int, steps: int, seed: int) -> list[Tensor]:
    """``steps`` index batches ``(batch_size,)`` into ``count`` items, drawn with replacement from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return list(torch.randint(count, (steps, batch_size), generator=generator))


def shifted(images: Tensor, *, generator: torch.Generator) -> Tensor:
    """Each ``(N, 1, 8, 8)`` image shifted by a random offset in ``{-1, 0, 1}^2``, background (-1) filled in."""
    padded = F.pad(images, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (images.shape[0], 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + 8, dx : dx + 8] for i, (dy, dx) in enumerate(offsets)])


def train_classifier(images: Tensor, labels: Tensor, *, steps: int, seed: int) -> DigitsClassifier:
    """Cross-entropy with Adam(1e-3, weight decay 1e-4), batch 128, random 1-pixel shifts; returned in eval mode."""
    torch.manual_seed(seed)
    classifier = DigitsClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3, weight_decay=1e-4)
    augment = torch.Generator().manual_seed(seed + 1)
    for index in batches(len(images), batch_size=128, steps=steps, seed=seed):
        loss = F.cross_entropy(classifier(shifted(images[index], generator=augment)), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier.eval()


def train_mlp_classifier(images: Tensor, labels: Tensor, *, steps: int, seed: int) -> DigitsMLPClassifier:
    """Cross-entropy with Adam(1e-3, weight decay 1e-4), batch 128, no augmentation; returned in eval mode."""
    torch.manual_seed(seed)
    classifier = DigitsMLPClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3, weight_decay=1e-4)
    for index in batches(len(images), batch_size=128, steps=steps, seed=seed):
        loss = F.cross_entropy(classifier(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier.eval()


def train_gan(images: Tensor, *, steps: int, seed: int, latent_dim: int = GAN_LATENT_DIM) -> DigitsGAN:
    """Non-saturating GAN, batch 64, Adam(2e-4, betas (0.5, 0.999)) for both nets; returns the EMA generator (decay
    0.999) in eval mode, with batch-norm statistics re-estimated on 32 x 256 prior latents."""
    torch.manual_seed(seed)
    generator = DigitsGAN(latent_dim=latent_dim)
    discriminator = DigitsDiscriminator()
    for module in discriminator.modules():
        if isinstance(module, nn.Linear):
            spectral_norm(module)
    average = copy.deepcopy(generator)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for index in batches(len(images), batch_size=64, steps=steps, seed=seed):
        fake = generator(torch.randn(64, latent_dim))
        loss_d = F.softplus(-discriminator(images[index])).mean() + F.softplus(discriminator(fake.detach())).mean()
        optimizer_d.zero_grad()
        loss_d.backward()
        optimizer_d.step()
        loss_g = F.softplus(-discriminator(fake)).mean()
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        with torch.no_grad():
            for kept, current in zip(average.parameters(), generator.parameters(), strict=True):
                kept.lerp_(current, 0.001)
    recalibrate_batch_norm(average, latent_dim=latent_dim, batches=32, batch_size=256, seed=seed)
    return average.eval()


@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, *, latent_dim: int, batches: int, batch_size: int, seed: int) -> None:
    """Replace every batch norm's running statistics by their plain average over ``batches`` prior batches."""
    norms = [module for module in generator.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    generator.train()
    prior = torch.Generator().manual_seed(seed + 1)
    for _ in range(batches):
        generator(torch.randn(batch_size, latent_dim, generator=prior))
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


def train_vae(images: Tensor, *, steps: int, seed: int, latent_dim: int = VAE_LATENT_DIM) -> tuple[DigitsDecoder, str]:
    """Gaussian VAE, batch 128, Adam(1e-3), one learned pixel scale ``s``:
    ``-ELBO = ||x - decoder(z)||^2 / (2 s^2) + 64 log s + KL(q(z|x) || N(0, I))`` (up to a constant).
    Returns the decoder in eval mode and a one-line summary: ``s``, the mean KL per latent dimension on the
    training images, and how many dimensions are active (mean KL above 0.01 nats)."""
    torch.manual_seed(seed)
    encoder = DigitsEncoder(latent_dim=latent_dim)
    decoder = DigitsDecoder(latent_dim=latent_dim)
    log_scale = nn.Parameter(torch.zeros(()))
    parameters = [*encoder.parameters(), *decoder.parameters(), log_scale]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    for index in batches(len(images), batch_size=128, steps=steps, seed=seed):
        batch = images[index]
        mean, log_variance = encoder(batch)
        latents = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        squared_error = (batch - decoder(latents)).flatten(1).pow(2).sum(1)
        reconstruction = 0.5 * squared_error * torch.exp(-2 * log_scale) + 64 * log_scale
        loss = (reconstruction + gaussian_kl(mean, log_variance).sum(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        kl_per_dim = gaussian_kl(*encoder.eval()(images)).mean(0)
    summary = (
        f"pixel scale s = {float(log_scale.detach().exp()):.4f}; KL per latent dim (nats) = "
        f"{[round(value, 3) for value in kl_per_dim.tolist()]}; active dims (KL > 0.01) = "
        f"{int((kl_per_dim > 0.01).sum())} of {latent_dim}"
    )
    return decoder.eval(), summary


def gaussian_kl(mean: Tensor, log_variance: Tensor) -> Tensor:
    """``(N, d)``: ``KL(N(mean, exp(log_variance)) || N(0, 1))`` per coordinate."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance)


def save(model: nn.Module, name: str, out: Path, *, config: dict[str, int]) -> None:
    """Save ``model``'s state dict as ``out / WEIGHTS_FILES[name]`` and rewrite ``out / "SHA256SUMS"``.

    The header metadata is one key, ``"config"``, holding sorted JSON: safetensors writes a metadata map in hash
    order, so several keys would give a different file (and SHA-256) on every run."""
    from safetensors.torch import save_file

    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    metadata = {"config": json.dumps({"model": type(model).__name__, **config}, sort_keys=True)}
    path = out / WEIGHTS_FILES[name]
    save_file(state, str(path), metadata=metadata)
    path.chmod(0o644)  # safetensors creates the file owner-only (0600)
    present = sorted(file for file in WEIGHTS_FILES.values() if (out / file).is_file())
    (out / "SHA256SUMS").write_text("".join(f"{sha256_of(out / file)}  {file}\n" for file in present))


@torch.no_grad()
def prior_samples(generator: nn.Module, count: int, *, latent_dim: int, seed: int) -> Tensor:
    """``(count, 1, 8, 8)`` images of ``count`` latents ``z ~ N(0, I_latent_dim)`` drawn from ``seed``."""
    latents = torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))
    return generator(latents)


def report_balance(title: str, images: Tensor, classifier: nn.Module) -> None:
    """Print the class histogram, its KL to uniform and the mean confidence of ``images`` through ``classifier``."""
    histogram = class_histogram(images, classifier)
    print(f"\n{title}: {images.shape[0]} images")
    print(balance_table(histogram))
    print(f"KL to uniform = {kl_to_uniform(histogram):.4f} nats; mean confidence = "
          f"{mean_confidence(images, classifier):.4f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for weights, SHA256SUMS and grids")
    parser.add_argument("--only", nargs="+", choices=sorted(DEFAULT_STEPS), default=sorted(DEFAULT_STEPS),
                        help="models to train (the others are loaded from --out for the measurements)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimizer steps for every trained model (default: {DEFAULT_STEPS})")
    parser.add_argument("--samples", type=int, default=10_000, help="prior samples per generator for the bias report")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the training and the measurements")
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    train_images, train_labels = digits(split="train", seed=args.seed)
    test_images, test_labels = digits(split="test", seed=args.seed)
    print(f"digits: {len(train_images)} train, {len(test_images)} test images; torch {torch.__version__}, 2 threads")

    def steps(name: str) -> int:
        return args.steps if args.steps is not None else DEFAULT_STEPS[name]

    meta = {"seed": args.seed}
    models: dict[str, nn.Module] = {}
    if "classifier" in args.only:
        started = time.perf_counter()
        models["classifier"] = train_classifier(train_images, train_labels, steps=steps("classifier"), seed=args.seed)
        save(models["classifier"], "classifier", args.out, config={**meta, "steps": steps("classifier")})
        print(f"classifier: {steps('classifier')} steps in {time.perf_counter() - started:.1f} s")
    if "mlp-classifier" in args.only:
        started = time.perf_counter()
        models["mlp-classifier"] = train_mlp_classifier(train_images, train_labels, steps=steps("mlp-classifier"),
                                                        seed=args.seed)
        save(models["mlp-classifier"], "mlp-classifier", args.out, config={**meta, "steps": steps("mlp-classifier")})
        print(f"mlp-classifier: {steps('mlp-classifier')} steps in {time.perf_counter() - started:.1f} s")
    if "gan" in args.only:
        started = time.perf_counter()
        models["gan"] = train_gan(train_images, steps=steps("gan"), seed=args.seed)
        save(models["gan"], "gan", args.out, config={**meta, "steps": steps("gan"), "latent_dim": GAN_LATENT_DIM})
        print(f"gan: {steps('gan')} steps in {time.perf_counter() - started:.1f} s")
    if "vae" in args.only:
        started = time.perf_counter()
        models["vae"], summary = train_vae(train_images, steps=steps("vae"), seed=args.seed)
        save(models["vae"], "vae", args.out, config={**meta, "steps": steps("vae"), "latent_dim": VAE_LATENT_DIM})
        print(f"vae: {steps('vae')} steps in {time.perf_counter() - started:.1f} s; {summary}")
    for name in ("classifier", "mlp-classifier", "gan", "vae"):
        if name not in models:
            models[name] = load_pretrained(name, weights_dir=args.out)

    classifier = models["classifier"]
    with torch.no_grad():
        for name in ("classifier", "mlp-classifier"):
            accuracy = float((models[name](test_images).argmax(1) == test_labels).double().mean())
            print(f"{name} test accuracy: {accuracy:.4f} ({len(test_images)} images)")
    report_balance("real test split through the classifier", test_images, classifier)
    for name, latent_dim in (("gan", GAN_LATENT_DIM), ("vae", VAE_LATENT_DIM)):
        grid = prior_samples(models[name], 64, latent_dim=latent_dim, seed=0)
        write_png_grid(grid, args.out / f"digits-{name}-samples.png", columns=16)
        images = prior_samples(models[name], args.samples, latent_dim=latent_dim, seed=args.seed)
        report_balance(f"{name}: naive samples z ~ N(0, I), seed {args.seed}", images, classifier)
    print(f"\ntotal wall time: {time.perf_counter() - began:.1f} s")
    print("SHA256SUMS:\n" + (args.out / "SHA256SUMS").read_text(), end="")


if __name__ == "__main__":
    main()
