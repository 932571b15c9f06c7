"""Programs that run on an etcd node (its own python3, ``-S -c``), shipped as package data and read as
text by :mod:`..etcdctl`; linted and type-checked here, never imported by the runner.

They keep to what Rocky 9's platform-python (3.9) and Debian's python3 have: the standard library only.
"""

from __future__ import annotations

from importlib.resources import files


def source(name: str) -> str:
    """The text of program ``name`` (``"digest"`` -> ``digest.py``), as shipped in the package."""
    return (files(__name__) / f"{name}.py").read_text(encoding="utf-8")
