"""Batch jobs: results equal the library's, resume after kill -9 byte for byte, refuse bad inputs early."""

import filecmp
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from scipy import stats

from gendebias.errors import InvalidArgumentError, InvalidLatentsError, UnknownGeneratorError
from gendebias.generators import load_generator
from gendebias.geometry import log_volume
from gendebias.jobs import run_resample, run_volumes


def same_folders(left, right):
    comparison = filecmp.dircmp(left, right)
    assert comparison.left_only == comparison.right_only == [] and comparison.diff_files == []
    for sub in comparison.common_dirs:
        same_folders(left / sub, right / sub)
    return True


@pytest.fixture
def latents_file(tmp_path):
    latents = np.random.default_rng(0).standard_normal((2500, 16)).astype(np.float32)
    path = tmp_path / "z.npy"
    np.save(path, latents)
    return path, latents


def test_volumes_job_matches_the_library(tmp_path, latents_file):
    path, latents = latents_file
    summary = run_volumes("digits-gan", path, tmp_path / "out", shard_size=1000, tile_codes=True, progress=False)
    table = pq.read_table(sorted((tmp_path / "out" / "shards").glob("*.parquet")))
    assert table.column("latent_id").to_pylist() == list(range(2500))
    expected = log_volume(load_generator("digits-gan"), torch.from_numpy(latents), chunk_size=64)
    np.testing.assert_array_equal(table.column("log_volume").to_numpy(), expected.numpy())
    assert summary["rows"] == 2500 and summary["shards"] == 3
    assert summary["log_volume"]["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [entry["rows"] for entry in manifest["shards"]] == [1000, 1000, 500]


@pytest.mark.parametrize("suffix", [".safetensors", ".parquet"])
def test_other_latent_files_give_the_same_result(tmp_path, latents_file, suffix):
    import pyarrow as pa
    from safetensors.numpy import save_file

    path, latents = latents_file
    other = tmp_path / f"z{suffix}"
    if suffix == ".safetensors":
        save_file({"latents": latents}, str(other))
    else:
        column = pa.FixedSizeListArray.from_arrays(pa.array(latents.reshape(-1)), 16)
        pq.write_table(pa.table({"latents": column}), other, row_group_size=700)
    run_volumes("digits-gan", path, tmp_path / "a", shard_size=1000, progress=False)
    run_volumes("digits-gan", other, tmp_path / "b", shard_size=1000, progress=False)
    for shard in range(3):
        name = f"shard-{shard:05d}.parquet"
        assert (tmp_path / "a" / "shards" / name).read_bytes() == (tmp_path / "b" / "shards" / name).read_bytes()


def test_kill_9_and_rerun_gives_byte_identical_outputs(tmp_path, latents_file):
    path, _ = latents_file
    run_volumes("digits-gan", path, tmp_path / "whole", shard_size=250, progress=False)
    code = (f"from gendebias.jobs import run_volumes; run_volumes('digits-gan', {str(path)!r}, "
            f"{str(tmp_path / 'broken')!r}, shard_size=250, progress=False)")
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "broken" / "shards").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list((tmp_path / "broken" / "shards").glob("*.json")))
    assert 2 <= finished < 10, "killed in the middle"
    assert not (tmp_path / "broken" / "manifest.json").exists()
    # a torn or tampered shard is recomputed, never trusted; a temporary file of a killed write is removed
    first = tmp_path / "broken" / "shards" / "shard-00000.parquet"
    first.write_bytes(first.read_bytes()[:-10])
    (tmp_path / "broken" / "shards" / ".shard-00005.parquet.abc123.tmp").write_bytes(b"half a shard")
    run_volumes("digits-gan", path, tmp_path / "broken", shard_size=250, progress=False)
    assert same_folders(tmp_path / "whole", tmp_path / "broken")


def test_bad_inputs_stop_before_any_work(tmp_path, latents_file):
    path, latents = latents_file
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, latents[:, :15])
    with pytest.raises(InvalidLatentsError, match=r"shape \[2500, 15\] but the generator takes \(N, 16\)"):
        run_volumes("digits-gan", wrong, tmp_path / "o1", progress=False)
    nan = latents.copy()
    nan[[7, 1999]] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InvalidLatentsError, match=r"rows \[7, 1999\] hold NaN"):
        run_volumes("digits-gan", tmp_path / "nan.npy", tmp_path / "o2", progress=False)
    (tmp_path / "garbage.npy").write_bytes(b"not numpy")
    with pytest.raises(InvalidArgumentError, match="cannot read latents"):
        run_volumes("digits-gan", tmp_path / "garbage.npy", tmp_path / "o3", progress=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidArgumentError, match="is not writable"):
        run_volumes("digits-gan", path, tmp_path / "a-file" / "out", progress=False)
    with pytest.raises(UnknownGeneratorError):
        run_volumes("digits-gann", path, tmp_path / "o4", progress=False)
    with pytest.raises(InvalidArgumentError, match="unknown device 'tpu'"):
        run_volumes("digits-gan", path, tmp_path / "o5", progress=False, device="tpu")
    for folder in ("o1", "o2", "o3", "o4", "o5"):
        assert not (tmp_path / folder).exists(), "nothing was started"


def test_a_different_job_in_the_same_folder_is_refused_and_nothing_is_overwritten(tmp_path, latents_file):
    path, latents = latents_file
    run_volumes("digits-gan", path, tmp_path / "out", shard_size=1000, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out" / "shards").iterdir()}
    np.save(tmp_path / "z8.npy", latents[:, :8])
    with pytest.raises(InvalidArgumentError, match=r"holds a different job .*generator 'digits-gan'"):
        run_volumes("digits-vae", tmp_path / "z8.npy", tmp_path / "out", shard_size=1000, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "shards").iterdir()} == before


STEEP_MODULE = """
import torch
from torch import nn


class Steep(nn.Module):
    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, latents):
        return torch.exp(self.rate * latents) / self.rate
"""


@pytest.fixture
def steep(tmp_path, monkeypatch):
    """``G(z) = exp(a z) / a`` on a standard normal latent: ``log_volume = a z`` exactly, so with ``a = 5`` one
    latent dominates each small shard and shard masses differ by orders of magnitude. Returns (spec path, a)."""
    rate = 5.0
    (tmp_path / "steep_toy.py").write_text(STEEP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "steep.toml"
    spec.write_text(f'source = "torch"\nfactory = "steep_toy:Steep"\nkwargs = {{ rate = {rate} }}\n'
                    'latent_shape = [1]\ndtype = "float64"\n')
    return str(spec), rate


def merged_chisquare_pvalue(counts, expected, minimum=5.0):
    """Chi-square goodness of fit after merging cells (smallest expectation first) into bins of >= ``minimum``."""
    order = np.argsort(expected)
    binned_counts, binned_expected, count, mass = [], [], 0.0, 0.0
    for cell in order:
        count, mass = count + counts[cell], mass + expected[cell]
        if mass >= minimum:
            binned_counts.append(count)
            binned_expected.append(mass)
            count, mass = 0.0, 0.0
    binned_counts[-1] += count
    binned_expected[-1] += mass
    return stats.chisquare(binned_counts, binned_expected).pvalue


def test_resample_job_is_multinomial_resampling_of_the_whole_pool(tmp_path, steep):
    """Shard counts follow the shard masses of the manifest, and each latent is drawn in proportion to its weight
    in the whole pool, on a generator whose shard masses differ by orders of magnitude."""
    from gendebias.jobs.shards import proposals as shard_proposals

    spec, rate = steep
    proposals, n, shard_size, rho = 2000, 20_000, 100, 1.0
    summary = run_resample(spec, tmp_path / "job", proposals_count=proposals, n=n, rho=rho, seed=3, sampler="sir",
                           shard_size=shard_size, progress=False)
    generator = load_generator(spec)
    shards = proposals // shard_size
    pool = torch.cat([shard_proposals(generator, 3, i, shard_size) for i in range(shards)]).double()
    exact = rho * rate * pool[:, 0]  # log-weights from the closed form, not from log_volume
    manifest = json.loads((tmp_path / "job" / "manifest.json").read_text())
    log_masses = np.array([entry["log_mass"] for entry in manifest["shards"]])
    np.testing.assert_allclose(log_masses, torch.logsumexp(exact.view(shards, shard_size), 1).numpy(), rtol=1e-9)
    assert log_masses.max() - log_masses.min() > math.log(100), "shard masses differ by orders of magnitude"

    drawn = pq.read_table(tmp_path / "job" / "resampled.parquet")
    ids = drawn.column("latent_id").to_numpy()
    latents = np.stack(drawn.column("latents").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(latents, pool.numpy()[ids])
    shard_share = np.exp(log_masses - np.logaddexp.reduce(log_masses))
    shard_counts = np.bincount(ids // shard_size, minlength=shards)
    assert merged_chisquare_pvalue(shard_counts, n * shard_share) > 0.001
    weights = torch.softmax(exact, 0).numpy()
    assert merged_chisquare_pvalue(np.bincount(ids, minlength=proposals), n * weights) > 0.001
    assert summary["ess"] == pytest.approx(1 / float((weights**2).sum()), rel=1e-9)


def test_smc_job_combines_populations_by_their_normalising_constants(tmp_path):
    """On ``tent`` (uniform prior on [-1, 1]^2, four tiles of constant log-volume) the target's normaliser is
    ``Z = E[exp(log_volume)] = sum_tiles (latent area / 4) * stretch`` and the upper tiles' share of the target is
    known. Tent's weights vary by a factor sqrt(14 / 5), so SMC reaches beta = 1 in its first step and each shard's
    ``log Z`` is the importance estimate over its own prior draws: its standard error is ``sd(w) / (Z sqrt(N))``."""
    proposals, n, shard_size = 1200, 1200, 400
    summary = run_resample("tent", tmp_path / "smc", proposals_count=proposals, n=n, seed=1, sampler="smc",
                           shard_size=shard_size, progress=False)
    tent = load_generator("tent").module
    upper_share = (1 - tent.kink) / 2  # of the uniform prior
    stretch = {upper: math.sqrt(1 + tent.slope**2 + (tent.step**2 if upper else 0.0)) for upper in (False, True)}
    mean = upper_share * stretch[True] + (1 - upper_share) * stretch[False]
    variance = upper_share * (1 - upper_share) * (stretch[True] - stretch[False]) ** 2
    log_z_error = math.sqrt(variance / proposals) / mean
    assert abs(summary["log_normalizer"] - math.log(mean)) < 3 * log_z_error
    assert summary["min_step_ess"] >= 0.3 * shard_size
    drawn = pq.read_table(tmp_path / "smc" / "resampled.parquet")
    assert drawn.num_rows == n and summary["distinct"] > n / 3
    latents = np.stack(drawn.column("latents").to_numpy(zero_copy_only=False))
    shares = tent.tile_area_shares()
    exact = shares[(False, True)] + shares[(True, True)]
    error = math.sqrt(exact * (1 - exact) * (1 / n + 1 / proposals))
    assert abs(float((latents[:, 1] > tent.kink).mean()) - exact) < 3 * error


def test_ray_engine_writes_the_same_bytes_as_the_local_engine(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_memory_monitor_refresh_ms", "0")  # the shared machine may pass Ray's 95% memory line
    run_resample("digits-gan", tmp_path / "local", proposals_count=1500, n=300, seed=2, sampler="sir",
                 shard_size=500, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_resample("digits-gan", tmp_path / "ray", proposals_count=1500, n=300, seed=2, sampler="sir",
                     shard_size=500, engine="ray", progress=False)
    finally:
        ray.shutdown()
    assert same_folders(tmp_path / "local", tmp_path / "ray")


def test_the_cli_runs_a_batch_job(tmp_path, latents_file):
    from pathlib import Path

    path, _ = latents_file
    gendebias = str(Path(sys.executable).parent / "gendebias")

    def batch(generator):
        return subprocess.run([gendebias, "batch", "volumes", "--generator", generator, "--latents", str(path),
                               "--out", str(tmp_path / "cli"), "--shard-size", "1000", "--quiet"],
                              capture_output=True, text=True, timeout=300)

    done = batch("digits-gan")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 2500
    failed = batch("digits-vae")
    assert failed.returncode == 1 and failed.stderr.startswith("error:") and "Traceback" not in failed.stderr


def test_outputs_are_readable_like_any_written_file(tmp_path):
    import stat

    run_resample("ramp", tmp_path / "job", proposals_count=100, n=10, shard_size=50, progress=False, sampler="sir")
    mode = stat.S_IMODE((tmp_path / "job" / "summary.json").stat().st_mode)
    assert mode == 0o666 & ~_umask()


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def test_batch_resample_picks_its_sampler_from_a_pilot_by_default(tmp_path):
    summary = run_resample("ramp", tmp_path / "auto", proposals_count=3000, n=100, seed=4, shard_size=1000,
                           progress=False)
    assert summary["sampler"] == "sir" and summary["choice"].startswith("sir: a pilot of 2048 prior latents")
    again = run_resample("ramp", tmp_path / "auto", proposals_count=3000, n=100, seed=4, shard_size=1000,
                         progress=False)
    assert again == summary, "a resumed job makes the same choice"
    with pytest.raises(InvalidArgumentError, match="serves samplers"):
        run_resample("ramp", tmp_path / "gibbs", proposals_count=100, n=10, sampler="gibbs", progress=False)


def test_volume_shards_hold_the_library_values_tile_codes_and_singular_values(tmp_path):
    from gendebias.geometry import singular_values, tile_codes

    latents = np.random.default_rng(1).uniform(-1, 1, (300, 2)).astype(np.float32)  # tent computes in float64
    np.save(tmp_path / "z.npy", latents)
    summary = run_volumes("tent", tmp_path / "z.npy", tmp_path / "out", shard_size=128, tile_codes=True,
                          singular_values=True, top_k=1, progress=False)
    tent, batch = load_generator("tent"), torch.from_numpy(latents).double()
    table = pq.read_table(sorted((tmp_path / "out" / "shards").glob("*.parquet")))
    expected = log_volume(tent, batch, top_k=1, chunk_size=64)
    assert not torch.equal(expected, log_volume(tent, batch))  # the top singular value only
    assert table.column("latent_id").to_pylist() == list(range(300))
    np.testing.assert_array_equal(table.column("log_volume").to_numpy(), expected.numpy())
    np.testing.assert_array_equal(table.column("tile_code").to_numpy(), tile_codes(tent, batch).numpy())
    sigma = np.stack(table.column("singular_values").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(sigma, singular_values(tent, batch, top_k=1, chunk_size=64).numpy())
    assert summary["rows"] == 300 and summary["log_volume"]["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]
    assert [entry["rows"] for entry in manifest] == [128, 128, 44] and summary["shards"] == 3
    for entry, rows in zip(manifest, torch.split(expected, 128), strict=True):
        assert entry["log_mass"] == pytest.approx(float(torch.logsumexp(rows, 0)), rel=1e-12)
        assert entry["log_square_mass"] == pytest.approx(float(torch.logsumexp(2 * rows, 0)), rel=1e-12)
        assert entry["log_max"] == float(rows.max())


def test_sir_job_draws_carry_their_weights_in_the_whole_pool(tmp_path, steep):
    from gendebias.jobs.shards import proposals as shard_proposals

    spec, rate = steep
    summary = run_resample(spec, tmp_path / "job", proposals_count=400, n=60, seed=5, sampler="sir",
                           shard_size=100, progress=False)
    generator = load_generator(spec)
    pool = torch.cat([shard_proposals(generator, 5, i, 100) for i in range(4)]).double()
    exact = torch.log_softmax(rate * pool[:, 0], 0)
    drawn = pq.read_table(tmp_path / "job" / "resampled.parquet")
    ids = drawn.column("latent_id").to_numpy()
    np.testing.assert_allclose(drawn.column("log_weight").to_numpy(), exact.numpy()[ids], rtol=1e-9)
    assert summary["max_weight"] == pytest.approx(float(exact.exp().max()), rel=1e-9)
    assert summary["distinct"] == len(set(ids.tolist())) < 60


def test_smc_job_summary_adds_up_its_shards(tmp_path):
    """Tent at rho = 0.5: the normaliser ``E[vol^0.5]`` is exact, and the job's own sums must match its shards'."""
    options = {"proposals_count": 300, "n": 150, "rho": 0.5, "seed": 2, "sampler": "smc", "shard_size": 100,
               "progress": False}
    summary = run_resample("tent", tmp_path / "smc", **options)
    manifest = json.loads((tmp_path / "smc" / "manifest.json").read_text())["shards"]
    masses = torch.tensor([e["log_normalizer"] + math.log(e["rows"]) for e in manifest], dtype=torch.float64)
    assert summary["log_normalizer"] == pytest.approx(float(torch.logsumexp(masses, 0)) - math.log(300), rel=1e-12)
    tent = load_generator("tent").module
    upper = (1 - tent.kink) / 2
    stretch = [math.sqrt(1 + tent.slope**2 + step**2) ** 0.5 for step in (0.0, tent.step)]
    mean = (1 - upper) * stretch[0] + upper * stretch[1]
    error = math.sqrt(upper * (1 - upper) * (stretch[1] - stretch[0]) ** 2 / 300) / mean
    assert abs(summary["log_normalizer"] - math.log(mean)) < 3 * error + 1e-3
    assert summary["evaluations"] == sum(e["evaluations"] for e in manifest) > 300
    assert summary["min_step_ess"] == min(e["min_ess"] for e in manifest) and summary["file"] == "resampled.parquet"
    assert all(e["stopped"] == "done" and e["beta"] == 1.0 and 0 < e["ess"] <= e["rows"] for e in manifest)
    drawn = pq.read_table(tmp_path / "smc" / "resampled.parquet")
    assert drawn.num_rows == 150 and bool(np.isnan(drawn.column("log_weight").to_numpy()).all())
    ids = drawn.column("latent_id").to_numpy()
    assert summary["distinct"] == len(set(ids.tolist())) and ids.min() >= 0 and ids.max() < 300
    shards = pq.read_table(sorted((tmp_path / "smc" / "shards").glob("*.parquet")))
    assert shards.column("latent_id").to_pylist() == list(range(300)) and shards.column("latents").type.list_size == 2
    run_resample("tent", tmp_path / "again", **options)
    assert same_folders(tmp_path / "smc", tmp_path / "again")  # every shard's SMC is seeded from the job's seed


def test_shard_seeds_are_stable_63_bit_values():
    """Seeds name the shards' proposals in every job folder ever written: they must never change."""
    from gendebias.jobs.shards import shard_seed

    assert shard_seed(1, 2, 3) == 8208089874740249663
    assert shard_seed(1, 2) == shard_seed(1, 2, 0) == 3429124245899528385
    assert shard_seed(0, 0, 7) == 6840754936244187882
    assert all(0 <= shard_seed(seed, index) < 2**63 for seed in range(20) for index in range(20))


def test_batch_auto_quotes_its_pilot_and_takes_smc_where_the_pool_is_too_small(tmp_path):
    from gendebias.geometry import effective_sample_size
    from gendebias.jobs.shards import shard_seed

    summary = run_resample("tent", tmp_path / "auto", proposals_count=300, n=100, seed=6, shard_size=150,
                           progress=False)
    tent = load_generator("tent")
    pilot = tent.sample_latents(300, seed=shard_seed(6, 0, 7))
    share = effective_sample_size(log_volume(tent, pilot).double()) / 300
    assert share * 300 < 4 * 100 and summary["sampler"] == "smc"
    assert summary["choice"] == (f"smc: a pilot of 300 prior latents had weight ESS {share:.1%}, so the pool of 300 "
                                 f"is predicted to have ESS {share * 300:.0f} for n = 100")
