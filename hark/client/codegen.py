"""Generates hark/client/api_client, the typed layer of `hark.client.sdk`, from docs/openapi.json.

    python -m hark.client.codegen        (what `make client` runs)

openapi-python-client (pinned in the test extra) writes the package; the repo's own ruff, with the
repo's configuration, then fixes and formats it, so the generated code is ruff- and mypy-clean like
the rest. The one unsafe fix applied is RUF036 (None last in a type union): the generated modules
use `from __future__ import annotations`, so the order of a union's members changes nothing at run
time. tests/unit/test_client_codegen.py regenerates into a temporary folder and fails when the
committed package differs: regenerate whenever docs/openapi.json changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "openapi.json"
PACKAGE = REPO / "hark" / "client" / "api_client"
PYPROJECT = REPO / "pyproject.toml"
# openapi-python-client's configuration (YAML; JSON is YAML). Its own post-hooks would run whatever
# ruff is on PATH with no configuration: we run ours below instead.
CONFIG = {"package_name_override": "api_client", "post_hooks": []}


def _run(*argv: str) -> None:
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def generate(dest: Path) -> None:
    """Writes the generated package to `dest` (created or replaced)."""
    with tempfile.TemporaryDirectory(prefix="hark-client-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(json.dumps(CONFIG))
        out = Path(tmp) / "api_client"
        _run(
            "openapi_python_client",
            "generate",
            "--path",
            str(DOC),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(out),
            "--fail-on-warning",
        )
        config_arg = f"--config={PYPROJECT}"
        _run("ruff", "check", config_arg, "--fix", "--quiet", "--exit-zero", str(out))
        _run("ruff", "check", config_arg, "--fix", "--unsafe-fixes", "--select=RUF036", "--quiet", str(out))
        _run("ruff", "format", config_arg, "--quiet", str(out))
        # anything left is a failure; the complexity gate is for hand-written code (pyproject's per-file-ignores
        # of hark/client/api_client do not reach this temporary folder)
        _run("ruff", "check", config_arg, "--extend-ignore=C901", "--quiet", str(out))
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(out, dest, ignore=shutil.ignore_patterns("__pycache__"))


def files(root: Path) -> dict[str, str]:
    """{relative path: text} of a generated package, for comparing two of them."""
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


if __name__ == "__main__":
    generate(PACKAGE)
    print(f"wrote {PACKAGE.relative_to(REPO)} from {DOC.relative_to(REPO)}")
