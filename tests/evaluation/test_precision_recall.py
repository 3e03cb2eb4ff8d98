"""Improved precision and recall: known answers, the weighted definition, chunking, memory at 50,000 x 50,000."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.evaluation import precision_recall

from .conftest import dense_radii, dense_squared_distances, gaussians


def dense_precision_recall(real, generated, k, weights=None):
    """The module docstring's weighted definition, on whole distance matrices (float64)."""
    m = generated.shape[0]
    counts = torch.ones(m, dtype=torch.float64) if weights is None else weights * (m / weights.sum())
    support, counts = generated[counts > 0], counts[counts > 0]
    real_radii = dense_radii(real, k)
    generated_radii = dense_radii(support, k, None if weights is None else counts)
    distances = dense_squared_distances(support, real)
    precision = float((counts * (distances <= real_radii[None, :]).any(dim=1)).sum()) / m
    recalled = ((distances <= generated_radii[:, None]).double() * counts[:, None]).sum(dim=0)
    return precision, float((recalled >= 1 - 1e-9).double().mean())


def test_identical_sets_have_precision_and_recall_one():
    real, _ = gaussians(400, 1, 8)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real.numpy(), real.numpy(), k=5) == (1.0, 1.0)


def test_far_apart_sets_have_precision_and_recall_zero():
    real, generated = gaussians(300, 200, 8, shift=100.0)
    assert precision_recall(real, generated) == (0.0, 0.0)


@pytest.mark.parametrize("chunk_size", [7, 64, None])
def test_chunked_result_equals_the_dense_reference(chunk_size):
    real, generated = gaussians(300, 257, 5, shift=0.3, seed=3)
    expected = dense_precision_recall(real, generated, 3)
    assert precision_recall(real, generated, chunk_size=chunk_size) == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected[0] < 0.95 and 0.2 < expected[1] < 0.95  # a case where membership is not all-or-nothing
    weights = torch.rand(257, generator=torch.Generator().manual_seed(4), dtype=torch.float64) ** 3
    weights[::5] = 0.0
    expected = dense_precision_recall(real, generated, 3, weights)
    result = precision_recall(real, generated, weights=weights, chunk_size=chunk_size)
    assert result == pytest.approx(expected, abs=1e-12)


def test_uniform_weights_reproduce_the_unweighted_value():
    real, generated = gaussians(300, 250, 6, shift=0.4, seed=5)
    unweighted = precision_recall(real, generated)
    assert precision_recall(real, generated, weights=torch.ones(250)) == unweighted
    assert precision_recall(real, generated, weights=np.full(250, 0.37)) == unweighted
    assert precision_recall(real, generated, weights=torch.full((250,), 1e-30)) == unweighted


def test_integer_weights_equal_duplicated_samples():
    real, generated = gaussians(300, 250, 6, shift=0.4, seed=6)
    weights = torch.ones(250, dtype=torch.int64)
    weights[0:120:2], weights[1:120:2] = 2, 0  # sums to 250, the pool size: a resample of the same size
    duplicated = generated.repeat_interleave(weights, dim=0)
    expected = precision_recall(real, duplicated)
    assert precision_recall(real, generated, weights=weights.double()) == pytest.approx(expected, abs=1e-12)
    assert expected != precision_recall(real, generated)  # the weights do change the answer


def test_weights_shift_precision_towards_the_real_manifold():
    real, generated = gaussians(500, 500, 2, seed=7)
    generated[250:] += 50.0  # half the samples are far from the real set
    assert precision_recall(real, generated).precision == pytest.approx(0.5, abs=0.1)
    near = torch.cat([torch.ones(250), torch.zeros(250)])
    assert precision_recall(real, generated, weights=near).precision > 0.9


def test_bad_inputs_are_refused_with_a_fix():
    real, generated = gaussians(20, 20, 3)
    with pytest.raises(InvalidArgumentError, match="same feature extractor"):
        precision_recall(real, generated[:, :2])
    with pytest.raises(InvalidArgumentError, match="at least 4"):
        precision_recall(real[:3], generated)
    with pytest.raises(InvalidArgumentError, match=r"log_weights\.exp"):
        precision_recall(real, generated, weights=-torch.ones(20))
    with pytest.raises(InvalidArgumentError, match=r"shape \(20,\)"):
        precision_recall(real, generated, weights=torch.ones(19))
    with pytest.raises(DegenerateWeightsError):
        precision_recall(real, generated, weights=torch.zeros(20))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        precision_recall(real.index_fill(0, torch.tensor([2]), float("nan")), generated)


MEMORY_PROBE = """
import json, resource, time, torch
from gendebias.evaluation import precision_recall
generator = torch.Generator().manual_seed(0)
real = torch.randn(50_000, 64, generator=generator)
generated = torch.randn(50_000, 64, generator=generator) + 0.1
start = time.perf_counter()
precision, recall = precision_recall(real, generated)
print(json.dumps({"precision": precision, "recall": recall, "seconds": time.perf_counter() - start,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


@pytest.mark.slow
def test_50k_by_50k_precision_recall_peaks_under_2_gib():
    """A dense 50,000 x 50,000 float32 distance matrix alone would be 9.3 GiB; the whole process (torch included)
    must stay under 2 GiB. Peak resident memory of a fresh interpreter, from getrusage (KiB on Linux)."""
    finished = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=1800,
                              check=True)
    measured = json.loads(finished.stdout.strip().splitlines()[-1])
    print(measured)
    assert measured["peak_bytes"] < 2 * 2**30
    assert 0.0 < measured["precision"] < 1.0 and 0.0 < measured["recall"] < 1.0
