"""Real file systems for tests of writes: a tmpfs of a given size (a real full disk, or another
file system than the test's folder), mounted as root."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["mount_tmpfs", "unavailable"]


def mount_tmpfs(folder: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``folder`` (root only); whether it worked."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def unavailable(reason: str) -> None:
    """A CI run must have the file system it needs; a local one skips."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
