"""Reference feature sets for a results table: a real data set where one exists, else a large naive sample.

* ``"digits"``: scikit-learn's digits (all 1,797 images, ``gendebias.generators.zoo.data.digits``), the data the
  zoo's ``digits-gan`` and ``digits-vae`` were trained on.
* ``"naive"``: ``size`` prior draws of the generator itself, seeded apart from the table's draws. It is **not real
  data**: precision, recall, density, coverage and FID against it measure how far a method moves away from naive
  sampling, not how good its samples are, and the table's label says so.
* ``"none"``: no reference; the quality columns are left out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation.features import extract_features
from gendebias.evaluation.scores import Reference
from gendebias.generators import Generator

REFERENCES = ("digits", "naive", "none")
NAIVE_SEED = 2**40
"""Seed of a naive reference sample: far from the small seeds of the table's replicates."""


def load_reference(name: str, generator: Generator, extractor: Callable[[Tensor], Tensor] | None, *,
                   size: int = 2000) -> Reference | None:
    """The reference set ``name`` (module docstring) as features of ``extractor``; None for ``"none"``."""
    if name not in REFERENCES:
        raise InvalidArgumentError(f"unknown reference {name!r}; use one of {list(REFERENCES)}", field="real")
    if name == "none":
        return None
    if extractor is None:
        raise InvalidArgumentError(f"reference {name!r} needs a feature extractor", field="features")
    if name == "digits":
        from gendebias.generators.zoo.data import digits

        images = digits()[0]
        if tuple(generator.output_shape) != tuple(images.shape[1:]):
            raise InvalidArgumentError(f"the digits are {tuple(images.shape[1:])} images but {generator.name} makes "
                                       f"{tuple(generator.output_shape)}; use --real naive or none", field="real")
        return Reference(extract_features(images, extractor), extractor,
                         f"scikit-learn digits ({images.shape[0]:,} real images)")
    latents = generator.sample_latents(size, seed=NAIVE_SEED)
    with torch.no_grad():
        images = torch.cat([generator(batch) for batch in latents.split(256)])
    return Reference(extract_features(images, extractor), extractor,
                     f"a naive reference sample ({size:,} prior draws, seed {NAIVE_SEED}), NOT real data: quality "
                     "columns measure distance from naive sampling, not quality")


def default_reference(generator_id: str) -> str:
    """``"digits"`` for the zoo's digit generators, ``"none"`` for any other."""
    return "digits" if generator_id in ("digits-gan", "digits-vae") else "none"
