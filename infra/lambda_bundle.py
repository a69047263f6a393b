"""Builds the Lambda code asset: `hark` and `lambdas` plus their dependencies for the Lambda runtime.

    python lambda_bundle.py            # infra/build/lambda (what `cdk deploy` uploads)

The dependencies come from the lock (requirements/lambda.txt, tools/lock.py: the project's runtime
dependencies less what the public Powertools layer and the runtime's boto3 provide), hashes checked, as
Linux x86_64 wheels for the Lambda's Python and Amazon Linux 2023's glibc 2.34 (pip --platform, no Docker
needed). The CDK CLI runs this before app.py (cdk.json); `make synth` and the tests do not: without
a build, app.py packages the source alone and warns that the asset is not deployable.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from hark_infra.config import LAMBDA_PYTHON  # noqa: E402

sys.path.insert(0, str(REPO))
from tools.lock import MANYLINUX_X86_64  # noqa: E402

BUILD = HERE / "build" / "lambda"
DEPS = HERE / "build" / "lambda-deps"
PACKAGES = ("hark", "lambdas")
REQUIREMENTS = REPO / "requirements" / "lambda.txt"
# Never run in Lambda: hark.local (emulator, local gateway) and the client side (the generated API client,
# its wrapper, the CLI, smoke test, operator and deploy tools), so they do not ship in the asset.
CLIENT_SIDE = ("api_client", "client.py", "client_codegen.py", "cli.py", "smoke.py", "ops.py", "deploy_check.py")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "local", "tests", *CLIENT_SIDE)


def install_deps() -> None:
    stamp = DEPS / ".requirements"
    wanted = hashlib.sha256(f"{LAMBDA_PYTHON}|".encode() + REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    shutil.rmtree(DEPS, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(DEPS),
            *(a for platform in MANYLINUX_X86_64 for a in ("--platform", platform)),
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--only-binary=:all:",
            "--require-hashes",
            "--no-deps",  # the file holds every package: nothing unpinned comes in
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(wanted)


def stage(dest: Path, with_deps: bool) -> Path:
    """Copy the packages (and the built dependencies) into `dest`, replacing what was there."""
    shutil.rmtree(dest, ignore_errors=True)
    if with_deps:
        shutil.copytree(DEPS, dest, ignore=shutil.ignore_patterns(".requirements", "__pycache__"))
    dest.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        shutil.copytree(REPO / package, dest / package, ignore=SKIP, dirs_exist_ok=True)
    (dest / "BUNDLED_DEPENDENCIES").write_text("yes\n" if with_deps else "no\n")
    return dest


def main() -> None:
    install_deps()
    stage(BUILD, with_deps=True)
    print(f"lambda bundle: {BUILD}")


if __name__ == "__main__":
    main()
