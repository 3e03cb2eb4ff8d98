"""A generator may carry a classifier (spec key ``classifier``); the digits zoo comes with its digit classifiers: the
generators carry the mean of the conv net's and the MLP's probabilities."""

import pytest
import torch

from gendebias.errors import GeneratorSpecError, InvalidArgumentError
from gendebias.generators.registry import builtin_registry, load_generator
from gendebias.generators.zoo.models import load_pretrained


@pytest.mark.parametrize("name", ["digits-gan", "digits-vae"])
def test_the_digits_generators_carry_the_mean_of_the_zoo_classifiers(name):
    generator = builtin_registry()[name]
    latents = generator.sample_latents(64, seed=0)
    probabilities = generator.class_probabilities(latents)
    assert probabilities.shape == (64, 10) and probabilities.dtype == torch.float64
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(64, dtype=torch.float64))
    with torch.no_grad():
        images = generator(latents).float()
        members = [torch.softmax(load_pretrained(member)(images), dim=1) for member in ("classifier", "mlp-classifier")]
    torch.testing.assert_close(probabilities, (members[0] + members[1]).double() / 2, rtol=1e-6, atol=1e-7)
    assert float((members[0] - members[1]).abs().max()) > 0.1, "the two members are different classifiers"


def test_a_spec_names_its_classifier_by_import_path_and_a_generator_without_one_says_so(tmp_path):
    spec = {"source": "torch", "factory": "gendebias.generators.toys:Tent", "prior": {"name": "uniform"},
            "dtype": "float64", "classifier": "tests.generators.test_classifier:tile_classifier"}
    generator = load_generator(spec)
    probabilities = generator.class_probabilities(torch.tensor([[-0.5, 0.0], [0.5, 0.9]], dtype=torch.float64))
    torch.testing.assert_close(probabilities, torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
    bare = load_generator({key: value for key, value in spec.items() if key != "classifier"})
    with pytest.raises(InvalidArgumentError, match="has no classifier"):
        bare.class_probabilities(torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(GeneratorSpecError, match="classifier must be"):
        load_generator({**spec, "classifier": "not-a-path"})
    with pytest.raises(GeneratorSpecError, match="cannot import"):
        load_generator({**spec, "classifier": "no_such_package.x:y"})


def tile_classifier():
    """Outputs of the tent -> one-hot over (z1 <= 0, z1 > 0)."""
    return lambda outputs: torch.nn.functional.one_hot((outputs[:, 0] > 0).long(), 2).double()
