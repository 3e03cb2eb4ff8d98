import importlib

import pytest
import torch

from gendebias.errors import DeviceMemoryError, InvalidArgumentError
from gendebias.geometry import jacobian, log_volume
from gendebias.geometry.memory import (
    PAIR_FACTOR,
    Chunking,
    Cost,
    Plan,
    cost_model,
    forward_bytes,
    map_chunks,
    plan_chunking,
)
from gendebias.geometry.volume import log_volume_estimate

jacobian_module = importlib.import_module("gendebias.geometry.jacobian")


def device_with_room_for(rows, monkeypatch):
    """Make Jacobian chunks raise CUDA's out-of-memory error above ``rows`` latent-tangent rows, as a device
    would; returns the list of (latents, tangents) plans that ran."""
    original = jacobian_module.jacobian_block
    plans = []

    def block(generator, chunk, run):
        plans.append((chunk.shape[0], run.chunking.tangents))
        if chunk.shape[0] * run.chunking.tangents > rows:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(generator, chunk, run)

    monkeypatch.setattr(jacobian_module, "jacobian_block", block)
    return plans


def test_plan_takes_every_tangent_first_then_as_many_latents_as_fit():
    cost = Cost(per_latent=1_000, per_pair=100)
    assert plan_chunking(cost, latents=50, tangents=10, budget=20_000) == Chunking(latents=10, tangents=10)
    assert plan_chunking(cost, latents=5, tangents=10, budget=20_000) == Chunking(latents=5, tangents=10)
    assert plan_chunking(cost, latents=50, tangents=10, budget=1_500) == Chunking(latents=1, tangents=5)
    assert plan_chunking(cost, latents=50, tangents=10, budget=10) == Chunking(latents=1, tangents=1)
    assert plan_chunking(cost, latents=50, tangents=10, budget=6_000, chunk_size=4) == Chunking(4, 5)


def test_halving_shrinks_the_larger_side_and_ends_in_a_clear_error():
    plans = [Chunking(latents=4, tangents=2)]
    while plans[-1] != Chunking(1, 1):
        plans.append(plans[-1].halved())
    assert plans == [Chunking(4, 2), Chunking(2, 2), Chunking(1, 2), Chunking(1, 1)]
    with pytest.raises(DeviceMemoryError, match="one latent with one tangent does not fit"):
        Chunking(1, 1).halved()


def test_forward_bytes_counts_what_the_operators_allocate():
    weight = torch.randn(1000, 10)
    assert forward_bytes(lambda: weight @ torch.ones(10)) >= 1000 * 4 + 10 * 4
    assert forward_bytes(lambda: weight.view(10, 1000)) == 0, "views allocate nothing"
    assert cost_model(100, result_bytes=7) == Cost(per_latent=2 * 100 + 7, per_pair=PAIR_FACTOR * 100)


def test_out_of_memory_halves_the_plan_and_retries_the_same_chunk():
    seen = []
    plan = Plan(Chunking(latents=8, tangents=3))

    def work(start, chunk):
        seen.append((start, chunk.shape[0], plan.chunking))
        if chunk.shape[0] * plan.chunking.tangents > 6:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return chunk.sum(dim=1)

    latents = torch.arange(20.0).reshape(10, 2)
    results = torch.cat(list(map_chunks(latents, plan, work)))
    assert torch.equal(results, latents.sum(dim=1)), "no latent lost or repeated"
    assert [(start, size, chunking.latents) for start, size, chunking in seen] == [
        (0, 8, 8), (0, 4, 4), (0, 2, 2), (2, 2, 2), (4, 2, 2), (6, 2, 2), (8, 2, 2)]
    assert plan.chunking == Chunking(latents=2, tangents=3), "the plan that ran"


def test_a_jacobian_that_runs_out_of_memory_is_still_exact(monkeypatch):
    plans = device_with_room_for(8, monkeypatch)
    matrix = torch.randn(10, 6, dtype=torch.float64)
    latents = torch.randn(7, 6, dtype=torch.float64)
    result = jacobian(lambda z: z @ matrix.T, latents, memory_budget=2**30)
    torch.testing.assert_close(result, matrix.expand(7, 10, 6), rtol=0, atol=1e-14)
    assert plans == [(7, 6), (3, 6), (3, 3)] + [(1, 3)] * 7, "halve the larger side until 3 rows fit"


def test_nothing_fits_gives_a_device_memory_error(monkeypatch):
    device_with_room_for(0, monkeypatch)
    with pytest.raises(DeviceMemoryError, match="one latent with one tangent"):
        log_volume(lambda z: z * 2, torch.randn(3, 6, dtype=torch.float64), memory_budget=2**30)


def test_small_budgets_chunk_tangents_and_change_nothing(mlp):
    generator = mlp([12, 64, 64, 40])
    latents = torch.randn(9, 12, dtype=torch.float64)
    roomy = log_volume_estimate(generator, latents, memory_budget=2**30)
    tight = log_volume_estimate(generator, latents, memory_budget=20_000)
    assert roomy.chunking == Chunking(latents=9, tangents=12)
    assert tight.chunking.latents == 1 and tight.chunking.tangents < 12
    torch.testing.assert_close(tight.log_volume, roomy.log_volume, rtol=0, atol=1e-12)


def test_bad_budget_is_refused(mlp):
    with pytest.raises(InvalidArgumentError, match="memory_budget must be a positive int"):
        log_volume(mlp([2, 3]), torch.randn(2, 2, dtype=torch.float64), memory_budget=0)


def test_a_forward_pass_that_does_not_fit_is_a_device_memory_error():
    def generator(latents):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    with pytest.raises(DeviceMemoryError, match="forward pass of one latent does not fit"):
        log_volume(generator, torch.randn(3, 6, dtype=torch.float64))
