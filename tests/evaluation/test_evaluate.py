"""``evaluate`` in process: the log-volume cache, and a table on a generator without a classifier."""

import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation import LogVolumeCache, evaluate
from gendebias.generators import load_generator
from gendebias.geometry import log_volume


def test_the_cache_gives_the_exact_log_volumes_and_computes_each_latent_once():
    generator = load_generator("digits-vae")
    latents = generator.sample_latents(40, seed=0)
    cache = LogVolumeCache(generator)
    first = cache(latents[:30])
    assert torch.equal(first, log_volume(generator, latents[:30]))
    both = cache(latents)
    assert cache.computed == 40  # the first 30 were not computed again
    assert torch.equal(both[:30], first)
    assert torch.allclose(both, log_volume(generator, latents), rtol=1e-12, atol=0)


def test_a_generator_without_a_classifier_has_no_balance_columns_and_no_balanced_row():
    generator = load_generator("ramp")
    table = evaluate(generator, ["naive", "polarity:-1"], n=30, replicates=2).table
    row = table.row("polarity:-1")
    assert row.kl is None and row.precision is None
    assert table.row("naive").log_volume_std is not None and table.classifier is None
    assert row.versus_naive == {}  # nothing to compare without a reference or a classifier
    with pytest.raises(InvalidArgumentError, match="has none"):
        evaluate(generator, ["naive", "balanced"], n=30)
