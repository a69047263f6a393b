"""The lock (uv.lock) and what each environment installs from it (requirements/*.txt, with hashes).

    python tools/lock.py            # relock after editing pyproject.toml, and rewrite requirements/
    python tools/lock.py --check    # fail when uv.lock or a requirements file is not current (make test)

uv.lock is the one lock: every package of every environment, pinned, with the hashes of its files. Each
requirements file is `uv export` of one environment's part of it, committed so that an install needs
nothing but pip (`pip install --require-hashes --no-deps -r requirements/X.txt`): a fresh machine, a
Docker build stage and the Lambda bundler alike (docs/deploy.md, "What ships, from one lock").
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "requirements"
# What the Lambda runtime provides (boto3 and its dependencies): not bundled. Powertools is, although the
# layer has it: the layer's release is older than the one the handlers need (infra/lambda_bundle.py).
LAMBDA_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)


def extras(*names: str) -> tuple[str, ...]:
    return ("--package", "hark", *(a for name in names for a in ("--extra", name)))


RUN = ("worker", "live", "local", "models", "diarize")
# Wheels for glibc 2.34 or older on x86_64 (pip takes each tag as given, not the older ones it implies): what
# the python3.13 runtime's Amazon Linux 2023 runs (glibc 2.34), and the worker images' Ubuntu 24.04 and
# Debian 12 (tests/integration/test_worker_images.py) too.
MANYLINUX_X86_64 = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# environment -> `uv export` arguments (the project itself is installed from the source tree, never from here)
TARGETS: dict[str, tuple[str, ...]] = {
    # make up's virtualenv: the emulator, local gateway, CPU workers (speaker labels included)
    "run": extras(*RUN),
    # make test's: the same plus the test tools and the CDK app
    "test": extras(*RUN, "test", "infra"),
    # the Lambda asset (infra/lambda_bundle.py): the runtime dependencies less what Lambda provides
    "lambda": (*extras(), *(a for name in LAMBDA_PROVIDED for a in ("--no-emit-package", name))),
    # the transcription worker image (worker/transcription/Dockerfile), which the live service runs too
    "transcription": extras("worker", "diarize", "live"),
    # the notification and webhook workers' image (worker/notification/Dockerfile)
    "notification": extras(),
    # the one-time ONNX export of the diarization weights (worker/transcription/export_diarization.sh),
    # beside PyTorch's CPU build, which comes from PyTorch's own index
    "export": ("--package", "hark", "--only-group", "export", "--no-emit-package", "torch"),
}


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    from uv import find_uv_bin  # the uv wheel of the test extra

    return subprocess.run([find_uv_bin(), *args], cwd=REPO, capture_output=True, text=True)


def export(target: str) -> str:
    done = uv(
        "export", "--frozen", "--format", "requirements.txt", "--no-emit-project", "--no-header", *TARGETS[target]
    )
    if done.returncode:
        sys.exit(f"uv export ({target}) failed:\n{done.stderr}")
    header = f"# requirements/{target}.txt: generated from uv.lock by tools/lock.py (do not edit)\n"
    return header + done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when uv.lock or requirements/ is stale")
    check = parser.parse_args().check

    done = uv("lock", "--check") if check else uv("lock")
    if done.returncode:
        sys.exit(f"uv.lock is not current with pyproject.toml (python tools/lock.py relocks):\n{done.stderr}")
    stale = []
    for target in TARGETS:
        path, text = OUT / f"{target}.txt", export(target)
        old = path.read_text() if path.exists() else ""
        if old == text:
            continue
        if check:
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(path), "uv export", lineterm="", n=0)
            stale.append("\n".join(list(diff)[:20]))
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        sys.exit("requirements/ is not current with uv.lock (python tools/lock.py rewrites it):\n" + "\n".join(stale))


if __name__ == "__main__":
    main()
