"""labpkg: the package behind *Training Loop Lab*.

One import line gives a chapter everything it needs::

    import labpkg
    device = labpkg.pick_device()

``labpkg.viz`` (matplotlib) and ``labpkg.widgets`` (ipywidgets) load on first use, so
``import labpkg`` stays cheap and works in a plain terminal.
"""

from __future__ import annotations

import importlib
from typing import Any

from labpkg.devices import amp_dtype_for, describe_device, pick_device, time_call

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "amp_dtype_for",
    "describe_device",
    "pick_device",
    "time_call",
]

_LAZY_MODULES: set[str] = set()


def __getattr__(name: str) -> Any:
    # PEP 562: heavy optional modules are imported only when a chapter touches them.
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"labpkg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'labpkg' has no attribute {name!r}")
