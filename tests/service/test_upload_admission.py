"""A streamed upload that the queue cannot take is refused before it is read: with the queue full, a 64 MB
``Reweight`` or ``ComputeLogVolumes`` stream gets RESOURCE_EXHAUSTED at once, the client sends only the first few
of its 64 messages, and the server's memory does not grow by the upload."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import from_tensor, to_tensor

from .conftest import error_reason, reported
from .faulty_generators import LOG_VOLUME, faulty_generators

MESSAGES = 64
ROWS = 65_536  # latents of the 4-d generator per message: 1 MiB of float32 each, 64 MiB in all
FIGURES: dict[str, dict[str, float]] = {}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakRss:
    """The highest resident set size of this process, sampled every 5 ms while the block runs (at most 60 s)."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        stop = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < stop:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Upload:
    """``MESSAGES`` messages of 1 MiB of latents each, made as gRPC asks for them; counts how many it was asked for."""

    def __init__(self, rpc: str) -> None:
        self.rpc, self.sent = rpc, 0
        self.latents = np.full((ROWS, 4), 0.5, np.float32)

    def __iter__(self):
        for index in range(MESSAGES):
            self.sent += 1
            first = {"generator_id": "linear"} if index == 0 else {}
            kind = pb.ReweightRequest if self.rpc == "Reweight" else pb.ComputeLogVolumesRequest
            yield kind(latents=to_tensor(self.latents.copy()), **first)


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if FIGURES:
        reported("uploads refused before buffering", dict(sorted(FIGURES.items())))


@pytest.mark.parametrize("rpc", ["Reweight", "ComputeLogVolumes"])
def test_a_streamed_upload_is_refused_before_it_is_read_when_the_queue_is_full(rpc):
    config = ServiceConfig(queue_size=1, max_batch=1, max_latents=MESSAGES * ROWS)
    generators = faulty_generators()
    gate = generators["gated"].module
    with running_server_state(config, generators) as (target, running), \
            grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        one = np.zeros((1, 4), np.float32)
        gate.hold()
        try:
            answers: dict[str, object] = {}

            def call(name, generator_id):
                (answer,) = stub.ComputeLogVolumes(iter([pb.ComputeLogVolumesRequest(
                    generator_id=generator_id, latents=to_tensor(one))]), timeout=60)
                answers[name] = from_tensor(answer.log_volumes, field="log_volumes")

            threads = [threading.Thread(target=call, args=("held", "gated"))]
            threads[0].start()
            assert gate.entered.wait(20), "the gated call never reached the device"
            threads.append(threading.Thread(target=call, args=("queued", "linear")))
            threads[1].start()
            stop = time.monotonic() + 20
            while running.engine._queue.qsize() < 1:  # the queue of one is now full
                assert time.monotonic() < stop
                time.sleep(0.01)
            upload = Upload(rpc)
            with PeakRss() as memory:
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as caught:
                    list(getattr(stub, rpc)(iter(upload), timeout=60))
                seconds = time.monotonic() - started
        finally:
            gate.release()
        for thread in threads:
            thread.join(30)
    grown = (memory.peak - memory.before) / 2**20
    FIGURES[rpc] = {"upload_mib": MESSAGES * ROWS * 16 / 2**20, "messages_sent": upload.sent,
                    "of_messages": MESSAGES, "answered_s": round(seconds, 3), "peak_rss_growth_mib": round(grown, 1)}
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(caught.value) == ("ERROR_REASON_QUEUE_FULL", "")
    assert seconds < 0.5, f"refused after {seconds:.2f} s"
    assert upload.sent <= 4, f"the client sent {upload.sent} of {MESSAGES} messages before the refusal"
    assert grown < 16, f"the process grew by {grown:.0f} MiB during a refused 64 MiB upload"
    np.testing.assert_allclose(answers["queued"], LOG_VOLUME, rtol=1e-5)
    np.testing.assert_allclose(answers["held"], LOG_VOLUME, rtol=1e-5)


def test_a_large_call_is_refused_before_its_latents_are_cut_into_pieces():
    """The admission check comes before the pieces: 4 million latents at ``max_batch=1`` were once split into 4
    million tensor views (gigabytes, tens of seconds) only to be refused."""
    import asyncio
    import tracemalloc

    import torch

    from gendebias.errors import QueueFullError
    from gendebias.service.batching import BatchingEngine
    from gendebias.service.metrics import Metrics

    generator = faulty_generators()["linear"]
    latents = torch.zeros(4 * 2**20, 4)

    async def refused() -> float:
        engine = BatchingEngine(max_batch=1, max_delay=0.0, queue_size=1, metrics=Metrics())
        started = time.monotonic()
        with pytest.raises(QueueFullError):  # a call of several pieces needs two free slots; the queue has one
            await engine.log_volumes("linear", generator, latents)
        return time.monotonic() - started

    tracemalloc.start()
    try:
        seconds = asyncio.run(refused())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 0.5 and peak < 2**20, (seconds, peak)
