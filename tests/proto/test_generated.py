"""The committed bindings are exactly what the pinned grpcio-tools generates from the .proto files."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "proto" / "gendebias" / "v1"


def load_generator_script():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_bindings_have_not_drifted(tmp_path):
    load_generator_script().generate(tmp_path)
    fresh = {path.name: path.read_bytes() for path in (tmp_path / "gendebias" / "v1").iterdir()}
    committed = {path.name: path.read_bytes() for path in GENERATED.iterdir()
                 if path.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))}
    assert sorted(fresh) == sorted(committed)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"run `python proto/generate.py`: {stale} differ from the .proto files"


def test_error_reasons_on_the_wire_match_the_exception_table():
    from gendebias.errors import ERRORS
    from gendebias.v1 import errors_pb2

    names = errors_pb2.ErrorReason.DESCRIPTOR.values_by_name
    wire = {name.removeprefix("ERROR_REASON_") for name in names} - {"UNSPECIFIED"}
    sdk_only = {"DEADLINE_EXCEEDED", "UNAVAILABLE"}  # raised by the SDK from status codes, never sent
    assert {error.reason for error in ERRORS} - sdk_only == wire
