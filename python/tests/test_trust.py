"""The native module is loaded only from where nobody else can replace it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmtel
from wasmtel._trust import UntrustedModuleError, check_trusted_path


def private_dir(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def test_a_module_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    open_dir = private_dir(tmp_path, "open")
    module = open_dir / "_native.so"
    module.write_bytes(b"")
    check_trusted_path(module)
    open_dir.chmod(0o777)
    with pytest.raises(UntrustedModuleError, match="open has mode 777"):
        check_trusted_path(module)
    # Sticky is enough above the module's directory, never as that directory.
    open_dir.chmod(0o1777)
    with pytest.raises(UntrustedModuleError, match="open has mode 1777"):
        check_trusted_path(module)
    inner = private_dir(open_dir, "inner")
    (inner / "_native.so").write_bytes(b"")
    check_trusted_path(inner / "_native.so")


def test_a_module_others_can_write_is_refused(tmp_path: Path) -> None:
    module = private_dir(tmp_path, "pkg") / "_native.so"
    module.write_bytes(b"")
    module.chmod(0o666)
    with pytest.raises(UntrustedModuleError, match="_native.so has mode 666"):
        check_trusted_path(module)


def test_a_link_is_judged_by_where_it_lies_and_where_it_leads(tmp_path: Path) -> None:
    real_dir = private_dir(tmp_path, "real")
    (real_dir / "_native.so").write_bytes(b"")
    link_dir = private_dir(tmp_path, "links")
    (link_dir / "_native.so").symlink_to(real_dir / "_native.so")
    check_trusted_path(link_dir / "_native.so")
    real_dir.chmod(0o777)
    with pytest.raises(UntrustedModuleError, match="real has mode 777"):
        check_trusted_path(link_dir / "_native.so")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_module_another_user_owns_is_refused(tmp_path: Path) -> None:
    module = private_dir(tmp_path, "pkg") / "_native.so"
    module.write_bytes(b"")
    os.chown(module, 65534, 65534)
    with pytest.raises(UntrustedModuleError, match="owned by uid 65534"):
        check_trusted_path(module)


def test_importing_the_package_from_a_directory_others_can_write_fails_clearly(tmp_path: Path) -> None:
    """The whole import, as a user would meet it: refused before the module loads."""
    package = Path(wasmtel.__file__).parent
    open_dir = private_dir(tmp_path, "site")
    copy = open_dir / "wasmtel"
    shutil.copytree(package, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    native = next(package.glob("_native*.so"))
    (copy / native.name).unlink()
    (copy / native.name).symlink_to(native.resolve())
    command = [sys.executable, "-c", "import wasmtel; print(wasmtel.__file__)"]
    environment = {**os.environ, "PYTHONPATH": str(open_dir)}
    # Run from elsewhere: the working directory comes first on the path.
    run = {"env": environment, "cwd": tmp_path, "capture_output": True, "text": True, "check": False}
    loaded = subprocess.run(command, **run)  # type: ignore[call-overload]
    assert loaded.returncode == 0 and loaded.stdout.startswith(str(copy)), loaded.stdout + loaded.stderr
    copy.chmod(0o777)
    refused = subprocess.run(command, **run)  # type: ignore[call-overload]
    assert refused.returncode != 0
    assert "UntrustedModuleError" in refused.stderr and "has mode 777" in refused.stderr, refused.stderr
