"""Regenerate the committed Python bindings of the wire contract: ``python proto/generate.py [OUT_DIR]``.

Runs grpcio-tools' protoc on ``proto/gendebias/v1/*.proto`` with ``--python_out``, ``--pyi_out`` (mypy stubs) and
``--grpc_python_out``. ``tests/proto/test_generated.py`` regenerates into a temporary folder and fails on any
difference, so the committed code never drifts from the .proto files (grpcio-tools is pinned exactly).
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
SOURCES = sorted((PROTO_ROOT / "gendebias" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    arguments = ["protoc", f"-I{PROTO_ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
                 f"--grpc_python_out={out_dir}", *(str(path.relative_to(PROTO_ROOT)) for path in SOURCES)]
    if protoc.main(arguments) != 0:
        raise SystemExit(f"protoc failed: {' '.join(arguments)}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT)
