"""check_version: silent when the imported labpkg is the notebook's, one warning with the fix
when it is not, and a clear error for a malformed version."""

from __future__ import annotations

import warnings

import pytest

import labpkg
from labpkg.book import versions


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(versions, "_warned", False)  # as in a new kernel


def test_the_notebooks_own_version_passes_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labpkg.check_version(labpkg.__version__) is True


def test_another_version_warns_once_with_the_command_that_fixes_it(monkeypatch):
    monkeypatch.setattr(labpkg, "__version__", "0.2.0")  # the reader's environment
    with pytest.warns(versions.VersionMismatch) as caught:
        assert labpkg.check_version("0.1.0") is False
    message = str(caught[0].message)
    assert "written for labpkg 0.1.0, but labpkg 0.2.0 is imported" in message
    assert f'pip install "labpkg @ git+{versions.REPOSITORY}@v0.1.0"' in message
    assert "restart" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second chapter cell of the same kernel: quiet
        assert labpkg.check_version("0.1.0") is False


@pytest.mark.parametrize("bad", ["0.1", "v0.1.0", 0.1, None])
def test_a_malformed_version_names_the_argument(bad):
    with pytest.raises(ValueError, match="written_for must be a version like '0.1.0'"):
        labpkg.check_version(bad)
