"""The version check: warn when the imported labpkg is not the one a notebook expects.

Every chapter's first cell names the version the book was built with and calls
``check_version``: a reader whose Colab session or virtual environment holds another labpkg
(installed for another edition of the book, or imported before a reinstall) is told once,
with the command that fixes it, instead of meeting a strange error chapters later.
"""

from __future__ import annotations

import re
import warnings

__all__ = ["REPOSITORY", "VersionMismatch", "check_version"]

#: Where the book and the package live (the book's ``_config.yml`` names the same address).
REPOSITORY = "https://github.com/training-loop-lab/training-loop-lab"

_warned = False  # one warning per Python process: a notebook may call this in every cell


class VersionMismatch(UserWarning):
    """The imported labpkg is not the version the notebook was written for."""


def check_version(written_for: str) -> bool:
    """Warn once if the imported labpkg differs from ``written_for``.

    Args:
        written_for: the version the notebook was written for, e.g. ``"0.1.0"``.

    Returns:
        True if the versions agree; False (after a ``VersionMismatch`` warning, the first
        time) if they differ.

    Example:
        >>> import labpkg
        >>> labpkg.check_version(labpkg.__version__)
        True
    """
    if not isinstance(written_for, str) or not re.fullmatch(r"\d+\.\d+\.\d+", written_for):
        raise ValueError(
            f"written_for must be a version like '0.1.0' (the one in the notebook's first "
            f"cell), got {written_for!r}"
        )
    from labpkg import __version__

    if written_for == __version__:
        return True
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(_advice(written_for, __version__), VersionMismatch, stacklevel=2)
    return False


def _advice(wanted: str, have: str) -> str:
    install = f'pip install "labpkg @ git+{REPOSITORY}@v{wanted}"'
    return (
        f"This notebook was written for labpkg {wanted}, but labpkg {have} is imported; "
        f"its functions may behave differently. Install the notebook's version with\n"
        f"    {install}\n"
        "then restart the kernel (on Colab: Runtime > Restart session) and run the notebook "
        "again."
    )
