"""Builds the Lambda code asset: `hark.domain`, `hark.api` and `lambdas` (SOURCES) plus their dependencies for the Lambda runtime.

    python lambda_bundle.py            # infra/build/lambda (what `cdk deploy` uploads)
    python lambda_bundle.py --runtime  # also what AWS adds beside it (the layer's Powertools, the runtime's
                                       # boto3), into a cache folder; prints both paths

The dependencies come from the lock (requirements/lambda.txt, tools/lock.py: the project's runtime
dependencies less the runtime's boto3), hashes checked, as Linux x86_64 wheels for the Lambda's Python and
Amazon Linux 2023's glibc 2.34 (pip --platform, no Docker needed). Powertools ships in the asset although
the layer has it: the API handler needs Powertools 3.28 or later (RequestUnsupportedContentType), which
the pinned layer's release lacks (hark.ops.lambda_runtime), and the asset comes before the layer on sys.path.
runtime_packages() installs what the runtime and the Powertools layer put beside the asset, for the tests
and the local stack, which run the handlers from the asset with nothing else on the path. The CDK CLI runs
this before app.py (cdk.json); `make synth` and the infra tests do not: without a build, app.py packages
the source alone and warns that the asset is not deployable.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hark.ops.lambda_runtime import LAMBDA_PYTHON, POWERTOOLS_LAYER_VERSION, runtime_requirements  # noqa: E402
from tools.lock import MANYLINUX_X86_64  # noqa: E402

BUILD = HERE / "build" / "lambda"
DEPS = HERE / "build" / "lambda-deps"
REQUIREMENTS = REPO / "requirements" / "lambda.txt"
# What the handlers import, chosen by inclusion: the shared domain, the API side and the entry points.
# The client side, operations, evaluation and the local stack never run in Lambda, so they do not ship.
SOURCES = ("hark/__init__.py", "hark/domain", "hark/api", "lambdas")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")
# The layer's and the runtime's packages, per Python and versions (what Lambda puts beside the asset).
RUNTIME_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hark" / "lambda-runtime"


def pip_target(target: Path, python: str, requirements: tuple[str, ...]) -> None:
    """Linux x86_64 wheels for CPython `python` ("3.13") into `target`, whatever Python runs pip."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *(a for platform in MANYLINUX_X86_64 for a in ("--platform", platform)),
            "--implementation",
            "cp",
            "--python-version",
            python,
            "--only-binary=:all:",
            *requirements,
        ],
        check=True,
    )


def install_deps(python: str = LAMBDA_PYTHON, target: Path = DEPS) -> None:
    stamp = target / ".requirements"
    wanted = hashlib.sha256(f"{python}|".encode() + REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    shutil.rmtree(target, ignore_errors=True)
    # The file holds every package, pinned with its hashes: nothing unpinned comes in.
    pip_target(target, python, ("--require-hashes", "--no-deps", "-r", str(REQUIREMENTS)))
    stamp.write_text(wanted)


def _source_digest(deps: Path | None) -> str:
    """What a staged asset is made of: every file it copies (path and bytes) and the dependencies' stamp."""
    digest = hashlib.sha256(f"{SOURCES}".encode())
    if deps is not None:
        digest.update((deps / ".requirements").read_bytes())
    for path in source_files():
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def source_files() -> list[Path]:
    """Every file of SOURCES the asset carries, in a stable order."""
    found: list[Path] = []
    for source in SOURCES:
        if (REPO / source).is_file():
            found.append(REPO / source)
            continue
        for root, dirs, files in os.walk(REPO / source):
            dirs[:] = sorted(set(dirs) - SKIP(root, dirs))
            found.extend(Path(root, name) for name in sorted(set(files) - SKIP(root, files)))
    return found


def stage(dest: Path, with_deps: bool, deps: Path = DEPS) -> Path:
    """Copy the packages (and the built dependencies) into `dest`, replacing what was there; nothing is
    copied when `dest` already holds the same (its stamp, beside it, so the asset's hash is its content's)."""
    stamp = dest.with_name(dest.name + ".stamp")
    wanted = _source_digest(deps if with_deps else None)
    if dest.is_dir() and stamp.exists() and stamp.read_text() == wanted:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    if with_deps:
        shutil.copytree(deps, dest, ignore=shutil.ignore_patterns(".requirements", "__pycache__"))
    dest.mkdir(parents=True, exist_ok=True)
    for path in source_files():
        target = dest / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (dest / "BUNDLED_DEPENDENCIES").write_text("yes\n" if with_deps else "no\n")
    stamp.write_text(wanted)
    return dest


def build(python: str = LAMBDA_PYTHON) -> Path:
    """The asset with its dependencies for CPython `python`: infra/build/lambda for the Lambda's Python
    (what deploys), infra/build/lambda-py3.X for another (a machine without the Lambda's Python).
    Processes building at once (the test suite's workers) take turns; the later finds the stamps."""
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _build(python)


def _build(python: str) -> Path:
    if python == LAMBDA_PYTHON:
        install_deps()
        return stage(BUILD, with_deps=True)
    deps = DEPS.with_name(f"{DEPS.name}-py{python}")
    install_deps(python, deps)
    return stage(BUILD.with_name(f"{BUILD.name}-py{python}"), with_deps=True, deps=deps)


def runtime_packages(python: str = LAMBDA_PYTHON, layer_version: int = POWERTOOLS_LAYER_VERSION) -> Path:
    """The Powertools layer's packages and the runtime's boto3 for CPython `python`, installed once into a
    cache folder named after their versions."""
    requirements = runtime_requirements(layer_version)
    name = f"py{python}-" + "-".join(r.split("[")[0].split("==")[0] + "-" + r.split("==")[1] for r in requirements)
    target = RUNTIME_CACHE / name
    if (target / ".complete").exists():
        return target
    partial = target.with_name(f"{name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    pip_target(partial, python, requirements)
    (partial / ".complete").touch()
    try:
        partial.rename(target)
    except OSError:  # another process finished the same install first
        shutil.rmtree(partial, ignore_errors=True)
    return target


def main() -> None:
    print(f"lambda bundle: {build()}")
    if "--runtime" in sys.argv[1:]:
        print(f"layer and runtime packages: {runtime_packages()}")


if __name__ == "__main__":
    main()
