"""The route benchmark runs, and its error sweep says what ``docs/geometry.md`` claims: below the rank tolerance the
Gram route's error is far inside the error that rounding the Jacobian to float32 alone causes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import volume_routes


def test_error_sweep_keeps_the_gram_route_inside_the_jacobians_own_error():
    low, high = volume_routes.error_sweep(kappas=(3e3, 1e7), count=1)
    assert low["route"] == "gram" and low["gram_vs_svd_nats"] < 0.1 * low["storage_nats"]
    assert high["route"] == "svd" and high["auto_is_minus_inf"]


def test_route_rows_measure_every_route_on_the_same_jacobians():
    jacobians, _ = volume_routes.synthetic_jacobians(2, rows=60, latent_dim=10, kappa=30.0)
    row = volume_routes.measure("tiny", jacobians.float(), generator=None, latents=None, repeats=1)
    assert row["auto_gram_share"] == 1.0 and row["gram_vs_svd_nats"] < 1e-9
    assert 25 < row["kappa_min"] <= row["kappa_max"] < 35
    assert {f"reduce_{route}_latents_per_s" for route in ("gram", "svd", "auto")} <= row.keys()
