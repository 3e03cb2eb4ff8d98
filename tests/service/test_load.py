"""Load: 50 concurrent clients mixing every RPC against one server for a fixed time (loopback, bounded)."""

import os
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor

from .conftest import reported, volumes_request

CLIENTS = 50
SECONDS = 6.0
WARM_UP = 3.0  # seconds of the same load first: peak RSS reaches its steady state (glibc arenas of 50 threads)


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
    """Peak resident set size of this process so far (server and clients), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def percentile(values, share):
    return values[int(share * (len(values) - 1))]


def latency_figures(latencies, elapsed, batches, batched):
    """Calls, throughput, p50/p99 over all calls and per method, and the mean device batch."""
    every = sorted(t for values in latencies.values() for t in values)
    figures = {"clients": CLIENTS, "seconds": round(elapsed, 1), "calls": len(every),
               "throughput_per_s": round(len(every) / elapsed, 1),
               "p50_ms": round(1000 * statistics.median(every), 1),
               "p99_ms": round(1000 * percentile(every, 0.99), 1),
               "mean_device_batch_latents": round(batched / batches, 1) if batches else 0.0}
    for method, values in sorted(latencies.items()):
        ordered = sorted(values)
        figures[f"{method}_calls"] = len(ordered)
        figures[f"{method}_p50_ms"] = round(1000 * statistics.median(ordered), 1)
        figures[f"{method}_p99_ms"] = round(1000 * percentile(ordered, 0.99), 1)
    return figures


def measured_load(seconds, warm_up=WARM_UP):
    """Figures of ``CLIENTS`` clients mixing every RPC for ``seconds`` after ``warm_up`` seconds of the same load;
    asserts no errors."""
    random.seed(0)
    config = ServiceConfig(metrics_port=0, max_n=1000, max_proposals=20_000)
    with running_server_state(config) as (target, running):
        load(target, warm_up, CLIENTS, seed=1000)  # warm-up: first allocations, thread pools, channels
        before, current_before = rss_mib(), current_rss_mib()
        started = time.monotonic()
        latencies, errors = load(target, seconds, CLIENTS, seed=0)
        elapsed = time.monotonic() - started
        after, current_after = rss_mib(), current_rss_mib()
        registry = running.servicer.metrics.registry
        batches = registry.get_sample_value("gendebias_batch_latents_count") or 0.0
        batched = registry.get_sample_value("gendebias_batch_latents_sum") or 0.0
    assert not errors, errors[:5]
    assert set(latencies) == {"ListGenerators", "GetGenerator", "ComputeLogVolumes", "Reweight", "Resample"}
    figures = {**latency_figures(latencies, elapsed, batches, batched),
               "max_rss_mib_before": round(before), "max_rss_mib_after": round(after),
               "rss_mib_before": round(current_before), "rss_mib_after": round(current_after)}
    assert figures["calls"] > CLIENTS, "each client finished at least one call"
    return figures


def test_50_clients_mixing_every_rpc_get_no_unexpected_error_and_memory_holds(record_property):
    figures = measured_load(SECONDS)
    for name, value in figures.items():
        record_property(name, value)
    reported("load", figures)
    after, before = figures["max_rss_mib_after"], figures["max_rss_mib_before"]
    assert after <= 1.10 * before, f"peak RSS grew from {before:.0f} to {after:.0f} MiB under load"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_rss_mib(pid):
    """``(VmRSS, VmHWM)`` of process ``pid``: its resident memory now and at its peak, MiB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def scraped(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
@pytest.mark.parametrize("malloc", ["glibc default", "MALLOC_MMAP_THRESHOLD_=131072"])
def test_60_seconds_of_50_clients_mixing_every_rpc_against_a_server_process(malloc):
    """The server in its own process (as deployed; the clients' threads are not in it), 20 s of warm-up, then 60 s
    of load. With glibc's default, its dynamic mmap threshold lets the heap fragment and the server's RSS creep up
    (reported, not asserted); with a fixed threshold, RSS after the 60 s is within 10% of RSS before them."""
    port, metrics_port = free_port(), free_port()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "GENDEBIAS_HOST": "127.0.0.1", "GENDEBIAS_PORT": str(port),
                   "GENDEBIAS_METRICS_PORT": str(metrics_port), "GENDEBIAS_MAX_N": "1000",
                   "GENDEBIAS_MAX_PROPOSALS": "20000"}
    if "=" in malloc:
        name, value = malloc.split("=")
        environment[name] = value
    code = "from gendebias.service.config import resolve_config; from gendebias.service.server import serve; " \
           "serve(resolve_config())"
    server = subprocess.Popen([sys.executable, "-c", code], env=environment, stderr=subprocess.DEVNULL)
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
        load(target, 20.0, CLIENTS, seed=1000)
        before, peak_before = process_rss_mib(server.pid)
        batches, batched = (scraped(metrics_port, f"gendebias_batch_latents_{kind}") for kind in ("count", "sum"))
        started = time.monotonic()
        latencies, errors = load(target, 60.0, CLIENTS, seed=0)
        elapsed = time.monotonic() - started
        after, peak_after = process_rss_mib(server.pid)
        batches = scraped(metrics_port, "gendebias_batch_latents_count") - batches
        batched = scraped(metrics_port, "gendebias_batch_latents_sum") - batched
    finally:
        server.kill()
        server.wait(30)
    assert not errors, errors[:5]
    figures = {"malloc": malloc, **latency_figures(latencies, elapsed, batches, batched),
               "server_rss_mib_before": round(before), "server_rss_mib_after": round(after),
               "server_peak_rss_mib_before": round(peak_before), "server_peak_rss_mib_after": round(peak_after)}
    reported(f"load, 60 s, server process, {malloc}", figures)
    assert set(latencies) == {"ListGenerators", "GetGenerator", "ComputeLogVolumes", "Reweight", "Resample"}
    if "=" in malloc:
        assert after <= 1.10 * before, figures
