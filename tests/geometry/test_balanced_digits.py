"""``target="balanced"`` on digits-gan, its class balance measured with a classifier other than the weighting one.

The second classifier is a scikit-learn logistic regression trained here on ``sklearn.datasets.load_digits``, the
8x8 images scaled as the zoo scales them (``x / 8 - 1``, :mod:`gendebias.generators.zoo.data`). Measured (seed 0,
n = 500; class KL to uniform in nats, logistic regression / zoo classifier): naive 0.006 / 0.008, tilted 0.38 /
0.36, balanced 0.060 / 0.003. The volume tilt unbalances the classes and ``balanced`` undoes it, but the second
classifier still sees 0.06 nats: the two classifiers agree on only 88% of digits-gan's outputs, and the balanced
weights favour exactly the outputs the weighting classifier finds rare, where they disagree most. digits-gan's
naive samples are already balanced (the model card's 0.007), so naive is not higher here.
"""

import pytest
import torch

from gendebias.evaluation.balance import class_distribution, kl_divergence
from gendebias.generators.registry import builtin_registry
from gendebias.geometry import sample

pytestmark = pytest.mark.slow  # two samplers on digits-gan: about two minutes on one CPU thread
N = 500


@pytest.fixture(scope="module")
def measured():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    second = LogisticRegression(max_iter=2000).fit(digits.images.reshape(-1, 64) / 8.0 - 1.0, digits.target)
    generator = builtin_registry()["digits-gan"]
    draws = {"naive": generator.sample_latents(N, seed=0)}
    results = {target: sample(generator, N, target=target, seed=0) for target in ("tilted", "balanced")}
    draws.update({target: result.latents for target, result in results.items()})

    def kl(latents, labels):
        return kl_divergence(class_distribution(labels, classes=10))

    table = {}
    for name, latents in draws.items():
        with torch.no_grad():
            images = generator(latents).reshape(-1, 64).double().numpy()
        table[name] = (kl(latents, torch.from_numpy(second.predict(images))),
                       kl(latents, generator.class_probabilities(latents).argmax(dim=1)))
    return table, results


def test_balanced_undoes_the_class_imbalance_of_the_volume_tilt(measured):
    table, results = measured
    summary = {name: f"{second:.4f} / {zoo:.4f}" for name, (second, zoo) in table.items()}
    assert table["balanced"][1] < 0.02, f"the weighting classifier sees balance: {summary}"
    assert table["balanced"][0] < 0.25 * table["tilted"][0], f"the second classifier agrees: {summary}"
    assert table["tilted"][0] > 0.2, f"the tilt alone unbalances the digits: {summary}"
    assert "class masses" in results["balanced"].choice


@pytest.mark.xfail(strict=True, reason="measured 0.060 nats with the logistic regression (the two classifiers "
                   "disagree on 12% of digits-gan's outputs, most where balanced puts its weight); see the docstring")
def test_the_second_classifier_sees_a_class_kl_under_two_hundredths(measured):
    table, _ = measured
    assert table["balanced"][0] < 0.02
