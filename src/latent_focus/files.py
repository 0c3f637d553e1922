"""Atomic file writes: a temporary file in the target folder, renamed into place only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    A crash or an exception leaves ``path`` as it was (absent or the previous file), never partial.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
