"""``gendebias`` commands, in this process (``--local``) and against a real server (``--target``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import gendebias
from gendebias.generators import load_generator
from gendebias.generators.zoo.grid import PNG_SIGNATURE
from gendebias.geometry import effective_sample_size, log_volume, log_volume_estimate, log_weights


def assert_one_error_line(result, *, contains: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert contains in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def ramp_latents(count: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, 2)).astype(np.float32)


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gendebias {gendebias.__version__}"


def test_generators_local_json_lists_the_zoo(invoke):
    result = invoke("generators", "--local", "--format", "json")
    assert result.exit_code == 0, result.output
    generators = {info["generator_id"]: info for info in json.loads(result.stdout)["generators"]}
    assert generators["digits-gan"]["latent_shape"] == [16]
    assert generators["digits-gan"]["output_shape"] == [1, 8, 8]


def test_generators_text_against_a_server(invoke, target):
    result = invoke("generators", "--target", target)
    assert result.exit_code == 0, result.output
    assert "digits-gan" in result.stdout and "(1, 8, 8)" in result.stdout


def test_volumes_local_writes_the_in_process_log_volumes(invoke, tmp_path):
    latents = ramp_latents()
    np.save(tmp_path / "x.npy", latents)
    result = invoke("volumes", "ramp", "--local", "--latents", "x.npy", "--out", "y.npy")
    assert result.exit_code == 0, result.output
    expected = log_volume(load_generator("ramp"), torch.from_numpy(latents)).numpy()
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)
    assert "64 latents" in result.stdout


def test_volumes_reads_and_writes_safetensors_through_a_server(invoke, tmp_path, target):
    latents = ramp_latents(seed=1)
    save_file({"latents": latents}, str(tmp_path / "x.safetensors"))
    result = invoke("volumes", "ramp", "--latents", "x.safetensors", "--out", "y.safetensors", "--tile-codes",
                       "--target", target, "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["count"] == 64 and summary["tiles"] == 2 and summary["out"] == "y.safetensors"
    written = load_file(str(tmp_path / "y.safetensors"))
    expected = log_volume(load_generator("ramp"), torch.from_numpy(latents)).numpy()
    np.testing.assert_allclose(written["log_volumes"], expected, rtol=1e-12)
    assert written["tile_codes"].shape == (64,)


def test_volumes_method_and_precision_local_and_remote_agree(invoke, tmp_path, target):
    """Both backends write what the library computes with the same method, top-k and precision."""
    latents = np.random.default_rng(3).standard_normal((8, 16)).astype(np.float32)
    np.save(tmp_path / "z.npy", latents)
    common = ["volumes", "digits-gan", "--latents", "z.npy", "--method", "randomized", "--top-k", "5",
              "--precision", "bf16", "--format", "json"]
    local = invoke(*common, "--local", "--out", "local.npy")
    remote = invoke(*common, "--target", target, "--out", "remote.npy")
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    summaries = [json.loads(result.stdout) for result in (local, remote)]
    assert summaries[0]["method"] == summaries[1]["method"] == "randomized"
    assert summaries[0]["precision"] == summaries[1]["precision"] == "bf16"
    generator = load_generator("digits-gan")
    expected = log_volume_estimate(generator, torch.from_numpy(latents), method="randomized", top_k=5,
                                   precision="bf16").log_volume.numpy()
    fp32 = log_volume_estimate(generator, torch.from_numpy(latents), method="randomized", top_k=5).log_volume
    assert np.abs(expected - fp32.numpy()).max() > 1e-3, "bf16 products move the values: the precision is visible"
    for out in ("local.npy", "remote.npy"):
        np.testing.assert_allclose(np.load(tmp_path / out), expected, rtol=0, atol=1e-9)
    wrong = invoke("volumes", "digits-gan", "--latents", "z.npy", "--method", "lanczos", "--local")
    assert wrong.exit_code == 1 and "unknown method 'lanczos'" in wrong.output


def test_reweight_local_and_remote_agree(invoke, tmp_path, target):
    """Both backends write the library's weights for rho = 0.5, which differ from rho = 1's."""
    latents = np.random.default_rng(2).standard_normal((50, 16)).astype(np.float32)
    np.save(tmp_path / "z.npy", latents)
    common = ["reweight", "digits-gan", "--latents", "z.npy", "--rho", "0.5", "--format", "json"]
    local = invoke(*common, "--local", "--out", "local.npy")
    remote = invoke(*common, "--target", target, "--target-density", "tilted", "--out", "remote.npy")
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    volumes = log_volume(load_generator("digits-gan"), torch.from_numpy(latents))
    expected = log_weights(volumes, rho=0.5)
    assert (expected - log_weights(volumes, rho=1.0)).abs().max() > 1.0, "rho changes these weights"
    for result, out in ((local, "local.npy"), (remote, "remote.npy")):
        np.testing.assert_allclose(np.load(tmp_path / out), expected.numpy(), rtol=0, atol=1e-9)
        assert json.loads(result.stdout)["ess"] == pytest.approx(effective_sample_size(expected), rel=1e-9)


def test_resample_local_writes_latents_and_a_png_grid(invoke, tmp_path):
    result = invoke("resample", "digits-gan", "--local", "--n", "50", "--seed", "1", "--sampler", "sir",
                    "--out", "a.npy", "--grid", "g.png")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "a.npy").shape == (50, 16)
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_SIGNATURE


def test_resample_against_a_server_is_reproducible_by_seed(invoke, tmp_path, target):
    runs = [invoke("resample", "digits-gan", "--n", "30", "--seed", "5", "--out", out, "--target", target,
                      "--format", "json") for out in ("a.npy", "b.npy")]
    assert all(run.exit_code == 0 for run in runs), [run.output for run in runs]
    first, second = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert first.shape == (30, 16) and np.array_equal(first, second)
    summary = json.loads(runs[0].stdout)
    assert summary["seed"] == 5 and summary["n"] == 30 and summary["acceptance_rate"] is None


def test_resample_grid_through_a_server(invoke, tmp_path, target):
    result = invoke("resample", "digits-gan", "--n", "8", "--seed", "0", "--sampler", "sir", "--grid", "g.png",
                    "--target", target)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("where", ["local", "remote"])
def test_an_unknown_generator_is_one_error_line(invoke, target, where):
    backend = ["--local"] if where == "local" else ["--target", target]
    result = invoke("resample", "no-such-generator", "--n", "5", *backend)
    assert_one_error_line(result, contains="no-such-generator")


def test_a_missing_input_file_is_one_error_line(invoke):
    result = invoke("volumes", "ramp", "--local", "--latents", "missing.npy")
    assert_one_error_line(result, contains="missing.npy")


def test_an_unknown_file_type_is_refused_before_any_work(invoke, tmp_path):
    np.save(tmp_path / "x.npy", ramp_latents())
    result = invoke("volumes", "ramp", "--local", "--latents", "x.npy", "--out", "y.csv")
    assert_one_error_line(result, contains=".safetensors")


def test_target_and_local_together_are_refused(invoke):
    result = invoke("generators", "--local", "--target", "localhost:1")
    assert_one_error_line(result, contains="--local")


def test_an_unreachable_server_is_one_error_line(invoke):
    result = invoke("generators", "--target", "127.0.0.1:1")
    assert_one_error_line(result, contains="127.0.0.1:1")


def test_serve_resolves_flags_into_the_config(invoke, monkeypatch):
    import gendebias.service.server as server

    served = []
    monkeypatch.setattr(server, "serve", served.append)
    for name in [name for name in os.environ if name.startswith("GENDEBIAS_")]:
        monkeypatch.delenv(name)
    assert invoke("serve").exit_code == 0
    assert invoke("serve", "--port", "6001", "--token", "t", "--metrics-port", "0").exit_code == 0
    assert served[0].port == 50051 and served[0].token is None and served[0].registry is None
    assert (served[1].port, served[1].token, served[1].metrics_port) == (6001, "t", 0)


def test_local_resample_with_smc(tmp_path):
    from typer.testing import CliRunner

    from gendebias.cli.main import app

    out = tmp_path / "smc.npy"
    result = CliRunner().invoke(app, ["resample", "tent", "--n", "50", "--local", "--sampler", "smc", "--seed", "2",
                                      "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (50, 2)
    assert json.loads(result.stdout)["sampler"] == "smc"


def test_reweight_balanced_local_and_remote_agree(invoke, tmp_path, target):
    """--target-density balanced weights with the generator's classifier on both backends."""
    latents = np.random.default_rng(3).standard_normal((80, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", latents)
    common = ["reweight", "digits-vae", "--latents", "z.npy", "--target-density", "balanced", "--format", "json"]
    local = invoke(*common, "--local", "--out", "local.npy")
    remote = invoke(*common, "--target", target, "--out", "remote.npy")
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    generator = load_generator("digits-vae")
    batch = torch.from_numpy(latents)
    expected = log_weights(log_volume(generator, batch), target="balanced",
                           class_probabilities=generator.class_probabilities(batch))
    for out in ("local.npy", "remote.npy"):
        np.testing.assert_allclose(np.load(tmp_path / out), expected.numpy(), rtol=0, atol=1e-9)


def test_serve_takes_the_token_from_a_file(invoke, monkeypatch, tmp_path):
    import gendebias.service.server as server

    served = []
    monkeypatch.setattr(server, "serve", served.append)
    monkeypatch.delenv("GENDEBIAS_TOKEN_FILE", raising=False)
    (tmp_path / "token").write_text("from-file\n")
    assert invoke("serve", "--token-file", str(tmp_path / "token")).exit_code == 0
    monkeypatch.setenv("GENDEBIAS_TOKEN", "from-env")
    assert invoke("serve").exit_code == 0
    assert [config.token for config in served] == ["from-file", "from-env"]
