"""Property-based hostile input, bounded: random tensors through the request decoding, and random bytes and random
tensors through a real server on port 0. Every refusal is a clean ``InvalidArgumentError`` (INVALID_ARGUMENT on the
wire), nothing is allocated beyond the data sent, and health stays SERVING.

With ``GENDEBIAS_RELIABILITY_OUT=<file>`` set, the module writes what it tried and the outcomes it saw to that JSON
file (docs/reliability.md is written from it); ``pytest -s`` prints the same summary.
"""

from __future__ import annotations

import logging
import math
import tracemalloc
from collections import Counter

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gendebias.errors import InvalidArgumentError
from gendebias.generators import load_generator
from gendebias.service import decoding
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import tensor_pb2
from gendebias.wire import DTYPES, from_tensor

from .conftest import reported

SEEN: dict[str, Counter[str]] = {}
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
WIRE = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LIMITS = [None, 0, 1, 64, 4096, 2**62]
GENERATORS = {name: load_generator(name) for name in ("ramp", "digits-gan")}


def seen(test: str, outcome: str) -> None:
    SEEN.setdefault(test, Counter())[outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    for test, counts in sorted(SEEN.items()):
        reported(test, dict(sorted(counts.items())))


sizes = st.one_of(st.integers(0, 8), st.sampled_from([2, 16, 2**31, 2**32 + 1, 2**62, 2**63 - 1]),
                  st.integers(-(2**63), -1))
specials = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0, -1e308, 1e-320])


SHAPES = st.lists(sizes, max_size=10)


@st.composite
def tensors(draw, shapes=SHAPES):
    """A ``Tensor`` message: any dtype code, any shape, and data of the right length (finite, with NaN/inf, or
    random bytes) or of a wrong one."""
    dtype = draw(st.one_of(st.sampled_from(sorted(DTYPES)), st.integers(-1, 5)))  # half of them known
    shape = draw(shapes)
    count = math.prod(shape) if all(size >= 0 for size in shape) else -1
    itemsize = DTYPES[dtype].itemsize if dtype in DTYPES else 4
    kind = draw(st.sampled_from(["exact", "special", "short", "long", "random"]))
    if kind in ("exact", "special") and 0 <= count * itemsize <= 4096:
        values = draw(st.lists(st.floats(-1e6, 1e6) if kind == "exact" else specials, min_size=count,
                               max_size=count))
        if dtype == tensor_pb2.DATA_TYPE_INT64:
            values = [int(value) if abs(value) < 2**62 else 0 for value in values]
        with np.errstate(over="ignore"):  # -1e308 as float32 is -inf: one more special value
            data = np.asarray(values, dtype=DTYPES.get(dtype, np.dtype("<f4"))).tobytes()
    elif kind in ("short", "long") and 0 < count * itemsize <= 4096:
        data = draw(st.binary(min_size=count * itemsize + 1, max_size=count * itemsize + 8)) if kind == "long" \
            else draw(st.binary(max_size=count * itemsize - 1))
    else:
        data = draw(st.binary(max_size=256))
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=data)


def latent_shapes(width: int):
    return st.one_of(SHAPES, st.tuples(st.integers(0, 8), st.just(width)).map(list))


def bounded(call):
    """Run ``call`` and return its result and the most numpy allocated meanwhile (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def outcome(test: str, call, *, budget: int):
    try:
        result, peak = bounded(call)
    except InvalidArgumentError as error:
        seen(test, f"{error.code}/{error.reason}/{error.field}")
        return None
    seen(test, "decoded")
    assert peak <= budget + (1 << 16), f"{peak} bytes allocated for {budget} bytes of data"
    return result


@BOUNDED
@given(tensor=tensors(), limit=st.sampled_from(LIMITS))
def test_from_tensor_refuses_cleanly_or_views_the_data(tensor, limit):
    array = outcome("wire.from_tensor", lambda: from_tensor(tensor, field="x", max_elements=limit),
                    budget=len(tensor.data))
    if array is not None:
        assert array.nbytes == len(tensor.data) and (limit is None or array.size <= limit)


@BOUNDED
@given(data=st.data(), name=st.sampled_from(sorted(GENERATORS)), limit=st.sampled_from(LIMITS[1:]))
def test_latents_from_refuses_cleanly_or_returns_finite_latents(data, name, limit):
    generator = GENERATORS[name]
    tensor = data.draw(tensors(latent_shapes(generator.latent_dim)))
    latents = outcome("decoding.latents_from",
                      lambda: decoding.latents_from(tensor, generator, max_elements=limit),
                      budget=2 * len(tensor.data))
    if latents is not None:
        assert latents.shape[1:] == generator.latent_shape and latents.numel() <= limit
        assert bool(latents.isfinite().all())


@BOUNDED
@given(tensor=tensors(st.lists(sizes, max_size=3)), count=st.one_of(st.integers(0, 16), st.just(2**62)))
def test_log_density_from_refuses_cleanly_or_aligns(tensor, count):
    values = outcome("decoding.log_density_from",
                     lambda: decoding.log_density_from(tensor, count, field="log_proposal"),
                     budget=2 * len(tensor.data))
    if values is not None:
        assert tuple(values.shape) == (count,)


def assert_serving(target):
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING


METHODS = {"ComputeLogVolumes": "stream", "Reweight": "stream", "Resample": "unary", "GetGenerator": "unary",
           "ListGenerators": "unary"}


@WIRE
@given(method=st.sampled_from(sorted(METHODS)), payload=st.binary(min_size=1, max_size=512))
def test_random_bytes_on_the_wire_are_invalid_argument(served, caplog, method, payload):
    target, _ = served
    caplog.set_level(logging.WARNING)
    with grpc.insecure_channel(target) as channel:
        path = f"/gendebias.v1.DebiasService/{method}"
        try:
            if METHODS[method] == "stream":
                list(channel.stream_stream(path)(iter([payload]), timeout=10))
            elif method == "Resample":
                list(channel.unary_stream(path)(payload, timeout=10))
            else:
                channel.unary_unary(path)(payload, timeout=10)
            code = grpc.StatusCode.OK  # some byte strings are valid messages (or end as a valid empty request)
        except grpc.RpcError as error:
            code = error.code()
    seen("wire: random bytes", f"{method}/{code.name}")
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OK), code
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert_serving(target)


@WIRE
@given(data=st.data())
def test_random_latents_on_the_wire_are_invalid_argument(served, stub, data):
    target, _ = served
    tensor = data.draw(tensors(latent_shapes(16)))  # mostly malformed; a well-formed one is answered
    request = pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents=tensor)
    try:
        list(stub.ComputeLogVolumes(iter([request]), timeout=30))
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
    seen("wire: random latents", code.name)
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK), code
    assert_serving(target)
