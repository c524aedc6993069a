"""`make protos`: generate Python, gRPC and typing stubs from protos/ into rustchain/generated."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTOS = ROOT / "protos"
GENERATED = ROOT / "services" / "rustchain" / "generated"


def proto_files() -> list[Path]:
    """Every .proto under protos/, in a stable order."""
    return sorted(PROTOS.rglob("*.proto"))


def generate(into: Path) -> list[Path]:
    """Run protoc over every proto file into `into`; returns the files written."""
    files = proto_files()
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    (into / "__init__.py").write_text(
        '"""Code generated from protos/ by `make protos`; do not edit."""\n'
    )
    if not files:
        return []
    plugin = Path(sysconfig.get_path("scripts")) / "protoc-gen-mypy"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--python_out={into}",
        f"--grpc_python_out={into}",
        f"--mypy_out={into}",
        f"--mypy_grpc_out={into}",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--plugin=protoc-gen-mypy_grpc={plugin.with_name('protoc-gen-mypy_grpc')}",
        *(str(f.relative_to(PROTOS)) for f in files),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    # protoc writes `from rustchain.x.v1 import y_pb2`; the modules live under rustchain.generated.
    for path in into.rglob("*.py*"):
        text = path.read_text()
        fixed = text.replace("from rustchain.", "from rustchain.generated.rustchain.")
        path.write_text(fixed)
    for directory in [p for p in into.rglob("*") if p.is_dir()]:
        (directory / "__init__.py").touch()
    return sorted(p for p in into.rglob("*") if p.is_file())


def main() -> None:
    """Regenerate the checked-in code."""
    written = generate(GENERATED)
    print(f"generated {len(written)} file(s) from {len(proto_files())} proto file(s)")


if __name__ == "__main__":
    main()
