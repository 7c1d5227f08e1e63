"""The native module is code this process runs outside any sandbox: load it
only from where nobody but this user and root can change it.

The rule is the runtime's own for its directories (``private_dir`` in the
Rust component crate): the file and every directory above it, as written and
as resolved, are owned by root or the effective user and are not writable by
group or others, except sticky directories (``/tmp``) above its parent.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path


class UntrustedModuleError(ImportError):
    """The native module lies where another user could replace it."""


def check_trusted_path(path: Path) -> None:
    """Raise ``UntrustedModuleError`` unless only root or this user can change ``path``."""
    me = os.geteuid()
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        _check_entry(candidate, me, is_parent=False)
        parents = list(candidate.parents)
        for depth, directory in enumerate(parents):
            _check_entry(directory, me, is_parent=depth == 0)


def _check_entry(path: Path, me: int, *, is_parent: bool) -> None:
    info = path.lstat()
    if info.st_uid not in (0, me):
        raise UntrustedModuleError(f"{path} is owned by uid {info.st_uid}; only root or uid {me} may own it")
    if stat.S_ISLNK(info.st_mode):
        return  # A link's mode means nothing; its directory is checked too.
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    sticky_ancestor = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX and not is_parent
    if writable_by_others and not sticky_ancestor:
        raise UntrustedModuleError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):o}: others may write to it, "
            "so the wasmtel native module there could have been replaced"
        )


def check_native_module(name: str = "wasmtel._native") -> None:
    """Check the native module's file before it is imported (the point of use)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"{name} is not installed (build it with maturin)")
    check_trusted_path(Path(spec.origin))
