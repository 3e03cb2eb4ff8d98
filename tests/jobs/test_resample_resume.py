"""``gendebias batch resample`` (SIR and SMC) killed with ``kill -9`` mid-job and re-run: the same files, byte for
byte, as an uninterrupted run, with the shards that had finished skipped."""

import filecmp
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GENDEBIAS = str(Path(sys.executable).parent / "gendebias")


def same_folders(left, right):
    comparison = filecmp.dircmp(left, right)
    assert comparison.left_only == comparison.right_only == [], (comparison.left_only, comparison.right_only)
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    assert mismatch == errors == [], (mismatch, errors)
    for sub in comparison.common_dirs:
        same_folders(left / sub, right / sub)
    return True


@pytest.mark.slow
@pytest.mark.parametrize(("sampler", "generator"), [("sir", "digits-gan"), ("smc", "tent")])
def test_batch_resample_resumes_byte_identical_after_kill_9(tmp_path, sampler, generator):
    proposals, shard_size = 800, 100
    shards = proposals // shard_size

    def command(out):
        return [GENDEBIAS, "batch", "resample", "--generator", generator, "--proposals", str(proposals), "--n", "300",
                "--rho", "1", "--seed", "4", "--sampler", sampler, "--shard-size", str(shard_size), "--out", str(out),
                "--quiet"]

    whole = subprocess.run(command(tmp_path / "whole"), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    broken = tmp_path / "broken"
    process = subprocess.Popen(command(broken), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((broken / "shards").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted((broken / "shards").glob("*.json"))
    assert 2 <= len(finished) < shards, "killed in the middle"
    assert not (broken / "manifest.json").exists() and not (broken / "resampled.parquet").exists()
    # a torn shard is recomputed, never trusted; a temporary file of a killed write is removed
    torn = finished[0].with_suffix(".parquet")
    torn.write_bytes(torn.read_bytes()[:-10])
    (broken / "shards" / f".shard-{shards - 1:05d}.parquet.abc123.tmp").write_bytes(b"half a shard")
    kept = {path.name: path.stat().st_mtime_ns for path in finished[1:]}

    resumed = subprocess.run(command(broken), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == json.loads(whole.stdout)
    assert same_folders(tmp_path / "whole", broken)
    assert {name: (broken / "shards" / name).stat().st_mtime_ns for name in kept} == kept, "finished shards skipped"
