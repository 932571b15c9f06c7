"""Production code (runbooks_lib outside lab/) never imports the lab's API server."""

from __future__ import annotations

import json
import subprocess
import sys

from runbooks_lib.kube.core import LAB_CLUSTER_NAME
from runbooks_lib.lab.apiserver import CLUSTER_NAME

_PROBE = r"""
import importlib, json, pathlib, sys
import runbooks_lib
root = pathlib.Path(runbooks_lib.__file__).parent
# from the files (pkgutil.walk_packages would import every package, the lab's too)
names = sorted(".".join(("runbooks_lib", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
               for p in root.rglob("*.py") if p.relative_to(root).parts[0] != "lab" and p.name != "__main__.py")
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, so a broken module cannot hide an import of the lab server
        failed[name] = repr(exc)
print(json.dumps({"imported": names, "failed": failed,
                  "lab_server": sorted(m for m in sys.modules if m.startswith("runbooks_lib.lab.apiserver"))}))
"""


def test_no_production_module_imports_the_lab_api_server():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["imported"]) > 30
    assert result["failed"] == {}
    assert result["lab_server"] == []


def test_the_client_recognises_the_lab_cluster_by_name():
    assert LAB_CLUSTER_NAME == CLUSTER_NAME
