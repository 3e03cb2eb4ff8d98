"""Batching under load, limits, auth, deadlines, create_server on port 0 and config resolution."""

import asyncio
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.errors import InvalidArgumentError
from gendebias.service.config import ServiceConfig, resolve_config
from gendebias.service.server import create_server
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import from_tensor

from .conftest import error_reason, volumes_request


def metric(text, name):
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_200_concurrent_small_requests_from_20_clients_are_batched(served):
    target, running = served
    latents = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    scrape = f"http://127.0.0.1:{running.metrics_port}/metrics"
    before = urllib.request.urlopen(scrape).read().decode()

    def client(index):
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.DebiasServiceStub(channel)
            return [from_tensor(next(iter(stub.ComputeLogVolumes(iter([volumes_request("digits-gan", latents)])))
                                     ).log_volumes, field="x") for _ in range(10)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [value for values in pool.map(client, range(20)) for value in values]
    assert len(results) == 200 and all(r.shape == (4,) for r in results)
    np.testing.assert_allclose(np.stack(results), np.broadcast_to(results[0], (200, 4)), rtol=1e-12)
    after = urllib.request.urlopen(scrape).read().decode()
    jobs = metric(after, "gendebias_batch_jobs_sum") - metric(before, "gendebias_batch_jobs_sum")
    batches = metric(after, "gendebias_batch_jobs_count") - metric(before, "gendebias_batch_jobs_count")
    assert jobs == 200
    assert batches < 100, f"200 requests ran as {batches:.0f} device batches: the engine merged them"
    assert 'gendebias_requests_total{code="OK",method="ComputeLogVolumes"}' in after


def test_full_queue_answers_resource_exhausted():
    # a call of several jobs is admitted when two queue slots are free (it then keeps one job queued at a time and
    # takes turns with the others), so a queue of one refuses a call of 50 one-latent jobs and admits a call of one
    config = ServiceConfig(max_batch=1, queue_size=1)
    with running_server_state(config) as (target, _), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((50, 16), np.float32))])))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(caught.value) == ("ERROR_REASON_QUEUE_FULL", "")
        (ok,) = stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((1, 16), np.float32))]))
        assert from_tensor(ok.log_volumes, field="x").shape == (1,)


def test_deadline_stops_the_request_and_the_server_stays_healthy(served, stub):
    """DEADLINE_EXCEEDED alone could come from the client's own timer: the server's latents counter must also stop
    within a batch or two of the deadline, not run on through all 20,000 proposals."""
    target, running = served
    batch = ServiceConfig().max_batch

    def computed():
        return running.metrics.registry.get_sample_value("gendebias_latents_total", {"generator_id": "digits-gan"})

    started = time.monotonic()
    list(stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((batch, 16), np.float32))])))
    quiet = max(1.0, 3 * (time.monotonic() - started))  # three batch-times without a new batch: the work stopped
    start = computed()
    request = pb.ResampleRequest(generator_id="digits-gan", n=1000, proposals=20_000, seed=0, sampler=pb.SAMPLER_SIR)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Resample(request, timeout=0.05))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    last, since = computed(), time.monotonic()
    while time.monotonic() - since < quiet and last - start <= 4 * batch:
        time.sleep(0.1)
        if computed() != last:
            last, since = computed(), time.monotonic()
    assert last - start <= 2 * batch, f"{last - start:.0f} latents computed after the deadline"
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_bearer_token_is_required_except_for_health():
    with running_server_state(replace(ServiceConfig(), token="s3cret")) as (target, _), \
            grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListGenerators(pb.ListGeneratorsRequest())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(caught.value) == ("ERROR_REASON_UNAUTHENTICATED", "")
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ComputeLogVolumes(iter([volumes_request("ramp", np.zeros((1, 2)))]),
                                        metadata=[("authorization", "Bearer wrong")]))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        listed = stub.ListGenerators(pb.ListGeneratorsRequest(), metadata=[("authorization", "Bearer s3cret")])
        assert len(listed.generators) == 5
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_create_server_binds_port_zero():
    async def scenario():
        server, port = await create_server("127.0.0.1:0", ServiceConfig())
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                listed = await pb_grpc.DebiasServiceStub(channel).ListGenerators(pb.ListGeneratorsRequest())
            return port, len(listed.generators)
        finally:
            await server.stop(0)

    port, count = asyncio.run(scenario())
    assert port > 0 and count == 5


def test_config_priority_is_flag_env_file_default(tmp_path):
    file = tmp_path / "server.toml"
    file.write_text('[server]\nport = 7000\nmax_n = 5\nregistry = "zoo.toml"\n')
    config = resolve_config(file=file, env={"GENDEBIAS_PORT": "7001", "GENDEBIAS_MAX_DELAY_MS": "2.5"},
                            flags={"port": 7002, "token": None})
    assert (config.port, config.max_n, config.max_delay_ms) == (7002, 5, 2.5)
    assert config.registry == str(tmp_path / "zoo.toml") and config.token is None
    assert resolve_config(file=file, env={"GENDEBIAS_PORT": "7001"}).port == 7001
    assert resolve_config(env={}).port == 50051
    with pytest.raises(InvalidArgumentError, match="GENDEBIAS_PORT='x' is not a number"):
        resolve_config(env={"GENDEBIAS_PORT": "x"})
    with pytest.raises(InvalidArgumentError, match=r"unknown server settings \['colour'\]"):
        resolve_config(flags={"colour": "red"}, env={})
    with pytest.raises(InvalidArgumentError, match="max_batch must be >= 1"):
        resolve_config(flags={"max_batch": 0}, env={})
