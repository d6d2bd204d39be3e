"""`import lookalike`, `lookalike.errors` and the CLI load no heavy runtime (checked in a fresh
interpreter), so `lookalike --help` and error handling stay fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("onnxruntime", "cv2", "torch", "faiss", "pymilvus", "fastapi", "skimage", "sklearn", "matplotlib")


def loaded_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


@pytest.mark.parametrize("statement", ["import lookalike", "import lookalike.errors", "import lookalike.config",
                                       "import lookalike.cli", "import lookalike.engine.params"])
def test_no_heavy_module_on_import(statement):
    heavy = sorted(set(HEAVY) & set(loaded_after(statement)))
    assert heavy == [], f"{statement} loads {heavy}"


def test_names_load_on_first_use():
    modules = loaded_after("import lookalike\nlookalike.Library\nlookalike.InvalidQuery")
    assert "numpy" in modules and "sqlite3" in modules  # the engine and its embedded store really loaded
    with pytest.raises(AttributeError):
        import lookalike

        lookalike.NoSuchThing  # noqa: B018
