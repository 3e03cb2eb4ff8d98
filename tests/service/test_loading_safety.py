"""Loading safety: a request only ever names a generator the server loaded from its registry at start. A
``generator_id`` that is a module path, a factory, a spec file, a pickle or any other path is NOT_FOUND, and
nothing is imported, unpickled or read because of it.

The traps are real: ``canary_module`` is importable (its folder is on ``sys.path``), ``spec.toml`` is a valid
spec whose factory lives in it, and ``payload.pkl`` / ``payload.pt`` unpickle into a call that writes a file.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from gendebias.generators import load_generator
from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor

from .conftest import error_reason

CANARY = """
from pathlib import Path
Path(__file__).with_name("imported").write_text("canary_module was imported")
import torch
def make():
    return torch.nn.Linear(2, 3)
"""


class Payload:
    """Unpickles into ``open(<marker>, "w")``: creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture
def traps(tmp_path, monkeypatch):
    (tmp_path / "canary_module.py").write_text(CANARY)
    (tmp_path / "spec.toml").write_text('source = "torch"\nfactory = "canary_module:make"\nlatent_shape = [2]\n')
    for name in ("payload.pkl", "payload.pt"):
        (tmp_path / name).write_bytes(pickle.dumps(Payload(tmp_path / "unpickled")))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("canary_module", None)
    yield tmp_path
    sys.modules.pop("canary_module", None)


def names(folder: Path) -> list[str]:
    return ["canary_module", "canary_module:make", "os:system", "gendebias.generators.toys:Ramp", "subprocess",
            str(folder / "canary_module.py"), str(folder / "spec.toml"), str(folder / "payload.pkl"),
            str(folder / "payload.pt"), str(folder), f"file://{folder / 'spec.toml'}", "../../../../etc/passwd",
            "/etc/passwd", "torchscript:" + str(folder / "payload.pt"), "digits-gan/../spec.toml", " digits-gan"]


def calls(stub, generator_id):
    latents = to_tensor(np.zeros((1, 2), np.float32))
    yield "GetGenerator", lambda: stub.GetGenerator(pb.GetGeneratorRequest(generator_id=generator_id), timeout=30)
    yield "ComputeLogVolumes", lambda: list(stub.ComputeLogVolumes(iter([pb.ComputeLogVolumesRequest(
        generator_id=generator_id, latents=latents)]), timeout=30))
    yield "Reweight", lambda: list(stub.Reweight(iter([pb.ReweightRequest(generator_id=generator_id,
                                                                          latents=latents)]), timeout=30))
    yield "Resample", lambda: list(stub.Resample(pb.ResampleRequest(generator_id=generator_id, n=2, seed=0),
                                                 timeout=30))


def test_a_generator_id_that_names_code_or_a_file_is_not_found_and_loads_nothing(traps):
    with running_server_state(ServiceConfig()) as (target, running), grpc.insecure_channel(target) as channel:
        served = sorted(running.servicer.generators)
        stub = pb_grpc.DebiasServiceStub(channel)
        answered = 0
        for generator_id in names(traps):
            for method, call in calls(stub, generator_id):
                with pytest.raises(grpc.RpcError) as caught:
                    call()
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND, (method, generator_id, caught.value)
                assert error_reason(caught.value) == ("ERROR_REASON_UNKNOWN_GENERATOR", "generator_id")
                answered += 1
        assert sorted(running.servicer.generators) == served
    assert answered == 4 * len(names(traps))
    assert "canary_module" not in sys.modules and not (traps / "imported").exists()
    assert not (traps / "unpickled").exists()
    # the traps were armed: loading the spec as a library user would imports the module, unpickling writes a file
    assert load_generator(traps / "spec.toml").latent_shape == (2,)
    assert (traps / "imported").exists()
    pickle.loads((traps / "payload.pkl").read_bytes()).close()  # the test's own payload
    assert (traps / "unpickled").exists()
