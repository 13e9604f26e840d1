"""``import diffprompt`` and ``diffprompt --help`` load no torch (each checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHECK = "import sys; {body}; print('torch' in sys.modules, 'transformers' in sys.modules)"


def _loads_torch(body: str) -> tuple[bool, bool]:
    proc = subprocess.run([sys.executable, "-c", _CHECK.format(body=body)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch, transformers = proc.stdout.split()[-2:]
    return torch == "True", transformers == "True"


@pytest.mark.parametrize("body", [
    "import diffprompt",
    "import diffprompt.dlm",
    "import diffprompt.integrations.tau",
    "from diffprompt.cli import _register; _register()",
])
def test_import_loads_no_torch(body: str) -> None:
    assert _loads_torch(body) == (False, False)


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["optimize", "--help"], ["tau", "run", "--help"]])
def test_cli_help_loads_no_torch(argv: list[str]) -> None:
    body = (f"sys.argv = ['diffprompt', *{argv!r}]; from diffprompt.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code")
    script = f"import sys\n{body}\nprint('torch' in sys.modules, 'transformers' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["False", "False"], proc.stdout[-500:]
