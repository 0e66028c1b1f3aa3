"""The project as git would ship it: the files of the working tree that are not ignored.

Packaging tests and the Colab rehearsal build from such a copy, never from the checkout
itself, so nothing they do leaves files behind and nothing outside version control leaks in.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path = ROOT) -> str:
    # safe.directory: a checkout owned by another user (CI containers) is still readable
    command = ["git", "-c", "safe.directory=*", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def project_files() -> list[str]:
    """Tracked files plus new files that .gitignore does not exclude (what a commit would hold)."""
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    return sorted(f for f in listed if f and (ROOT / f).is_file())


def copy_project(dest: Path) -> Path:
    """Copy ``project_files()`` into ``dest`` (created) and return it."""
    for name in project_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def make_release_repo(dest: Path, tag: str) -> Path:
    """A git repository holding the project as one commit, tagged ``tag`` (e.g. ``v0.1.0``)."""
    copy_project(dest)
    identity = ["-c", "user.name=labpkg tests", "-c", "user.email=tests@localhost"]
    _git("init", "--quiet", "--initial-branch=main", cwd=dest)
    _git("add", "--all", cwd=dest)
    _git(*identity, "commit", "--quiet", "--no-gpg-sign", "-m", "release", cwd=dest)
    _git(*identity, "tag", tag, cwd=dest)
    return dest
