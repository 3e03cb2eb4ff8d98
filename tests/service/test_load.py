"""Load: 50 concurrent clients mixing every RPC against one server for a fixed time (loopback, bounded)."""

import random
import resource
import statistics
import threading
import time

import grpc
import numpy as np

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor

from .conftest import volumes_request

CLIENTS = 50
SECONDS = 6.0


def calls(stub, rng):
    """One random RPC of each kind, small enough that 50 clients keep the device busy without a backlog."""
    latents = rng.standard_normal((rng.integers(1, 9), 16)).astype(np.float32)
    kind = rng.integers(0, 5)
    if kind == 0:
        return "ListGenerators", lambda: stub.ListGenerators(pb.ListGeneratorsRequest(), timeout=30)
    if kind == 1:
        return "GetGenerator", lambda: stub.GetGenerator(pb.GetGeneratorRequest(generator_id="digits-gan"), timeout=30)
    if kind == 2:
        return "ComputeLogVolumes", lambda: list(stub.ComputeLogVolumes(
            iter([volumes_request("digits-gan", latents)]), timeout=30))
    if kind == 3:
        return "Reweight", lambda: list(stub.Reweight(iter([pb.ReweightRequest(
            generator_id="digits-gan", latents=to_tensor(latents))]), timeout=30))
    return "Resample", lambda: list(stub.Resample(pb.ResampleRequest(
        generator_id="digits-gan", n=4, proposals=16, sampler=pb.SAMPLER_SIR, seed=int(rng.integers(0, 2**31))),
        timeout=30))


def load(target, seconds, clients, seed):
    """Run ``clients`` threads of random calls for ``seconds``; returns (latencies by method, unexpected errors)."""
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index):
        rng = np.random.default_rng(seed + index)
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.DebiasServiceStub(channel)
            while time.monotonic() < stop:
                method, call = calls(stub, rng)
                started = time.perf_counter()
                try:
                    call()
                except grpc.RpcError as error:
                    with lock:
                        errors.append(f"{method}: {error.code()} {error.details()}")
                    continue
                with lock:
                    latencies.setdefault(method, []).append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return latencies, errors


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_50_clients_mixing_every_rpc_get_no_unexpected_error_and_memory_holds(record_property):
    random.seed(0)
    config = ServiceConfig(metrics_port=0, max_n=1000, max_proposals=20_000)
    with running_server_state(config) as (target, running):
        load(target, 2.0, CLIENTS, seed=1000)  # warm-up: first allocations, thread pools, channels
        before = rss_mib()
        started = time.monotonic()
        latencies, errors = load(target, SECONDS, CLIENTS, seed=0)
        elapsed = time.monotonic() - started
        after = rss_mib()
        registry = running.servicer.metrics.registry
        batches = registry.get_sample_value("gendebias_batch_latents_count") or 0.0
        batched = registry.get_sample_value("gendebias_batch_latents_sum") or 0.0
    assert not errors, errors[:5]
    every = sorted(t for values in latencies.values() for t in values)
    assert set(latencies) == {"ListGenerators", "GetGenerator", "ComputeLogVolumes", "Reweight", "Resample"}
    figures = {"clients": CLIENTS, "seconds": round(elapsed, 1), "calls": len(every),
               "throughput_per_s": round(len(every) / elapsed, 1),
               "p50_ms": round(1000 * statistics.median(every), 1),
               "p99_ms": round(1000 * every[int(0.99 * (len(every) - 1))], 1),
               "mean_device_batch_latents": round(batched / batches, 1) if batches else 0.0,
               "max_rss_mib_before": round(before), "max_rss_mib_after": round(after)}
    for name, value in figures.items():
        record_property(name, value)
    print("load:", figures)
    assert len(every) > CLIENTS, "each client finished at least one call"
    assert after <= 1.10 * before, f"peak RSS grew from {before:.0f} to {after:.0f} MiB under load"
