"""``evaluate_remote``: the results table for a generator behind a gendebias server.

The server draws (``Client.resample`` with ``return_outputs=True``); this process scores the returned images with
torch (the ``evaluation`` extra) exactly as :func:`gendebias.evaluation.evaluate` does, so a remote table and a local
one of the same seeds agree. The SDK itself stays free of torch: ``client`` is any object with the ``resample``
method of :class:`gendebias.clients.Client` (this module never imports the SDK).

Remote methods are those a server can draw: ``naive`` (the ``n`` prior draws of the seed: a pool of ``n`` proposals
resampled without replacement, so every draw is kept once), ``magnet``, ``polarity:RHO``, ``tilted:RHO`` and
``balanced`` (with the server's classifier). The truncation trick needs the generator's outputs at latents this
process chooses, and the ``uniform`` target a bounded prior, so both are refused: run :func:`evaluate` in process
for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._inputs import check_positive_int, check_seed
from gendebias.evaluation.evaluate import Evaluation, Setting, tabulate
from gendebias.evaluation.methods import Draw, Method, parse_methods
from gendebias.evaluation.scores import Classifier, Reference

REMOTE_METHODS = ("naive", "magnet", "polarity:-1", "polarity:-0.5", "polarity:0.5", "balanced")
"""The default methods of :func:`evaluate_remote`."""


class ResamplingClient(Protocol):
    """What :func:`evaluate_remote` needs of a client: ``Client.resample``."""

    def resample(self, generator_id: str, n: int, **options: Any) -> Any: ...


def evaluate_remote(client: ResamplingClient, generator_id: str, methods: Sequence[str | Method] = REMOTE_METHODS,
                    *, n: int = 500, seed: int = 0, replicates: int = 3, reference: Reference | None = None,
                    classifier: Classifier | None = None, classifier_label: str | None = None,
                    features: str | None = None, max_evaluations: int | None = None, alpha: float = 0.05,
                    progress: Callable[[str], None] | None = None) -> Evaluation:
    """The results table of ``generator_id`` on the server behind ``client`` (module docstring); the arguments are
    those of :func:`gendebias.evaluation.evaluate`, with ``classifier`` a local callable (images -> class
    probabilities) or None. The log-volume columns are left empty: the server does not return them with samples."""
    n = check_positive_int(n, "n", minimum=6)
    seeds = tuple(check_seed(seed) + offset for offset in range(check_positive_int(replicates, "replicates")))
    chosen = parse_methods(methods)
    for method in chosen:
        if method.kind == "truncation" or method.target == "uniform":
            raise InvalidArgumentError(f"method {method.name!r} cannot be drawn by a server (module docstring of "
                                       "gendebias.evaluation.remote); use gendebias.evaluation.evaluate in process",
                                       field="methods")

    def drawer(method: Method, replicate_seed: int) -> tuple[Draw, Tensor, Tensor | None]:
        options: dict[str, Any] = {"seed": replicate_seed, "return_outputs": True}
        if method.kind == "naive":
            options.update(rho=0.0, proposals=n, scheme="without_replacement", sampler="sir")
        else:
            options.update(rho=method.rho, target=method.target, max_evaluations=max_evaluations)
        with warnings.catch_warnings():  # the warnings are kept in the row
            warnings.simplefilter("ignore", UserWarning)
            drawn = client.resample(generator_id, n, **options)
        latents = torch.from_numpy(np.ascontiguousarray(drawn.latents))
        outputs = torch.from_numpy(np.ascontiguousarray(drawn.outputs))
        if method.kind == "naive":
            return Draw(latents, float(n), int(drawn.distinct), 0, "naive", 1.0, ()), outputs, None
        return (Draw(latents, float(drawn.ess), int(drawn.distinct), int(drawn.evaluations), str(drawn.sampler),
                     float(drawn.beta), tuple(drawn.warnings)), outputs, None)

    setting = Setting(generator_id, n, seeds, reference, features, classifier,
                      None if classifier is None else classifier_label or type(classifier).__name__,
                      max_evaluations, alpha)
    return tabulate(chosen, drawer, setting, progress)
