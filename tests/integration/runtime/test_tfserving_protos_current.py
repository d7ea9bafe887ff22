"""The checked-in TF Serving protobuf modules (runtime/tfserving/*_pb2.py, .pyi) are what `make protos` generates now.

protoc runs as its own process, as `make protos` runs it: in-process, grpc_tools' protoc shares the address space
with whatever protobuf C++ code the session loaded (TensorFlow, in the model server's tests) and can crash.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[3] / "runtime"
GENERATED = ("model_service_pb2.py", "model_service_pb2.pyi")


def test_checked_in_code_is_what_make_protos_generates(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    subprocess.run([*argv, "tfserving/model_service.proto"], cwd=RUNTIME, check=True, timeout=120)
    for name in GENERATED:
        fresh = (tmp_path / "tfserving" / name).read_text()
        assert fresh == (RUNTIME / "tfserving" / name).read_text(), f"runtime/tfserving/{name} is stale: make protos"
