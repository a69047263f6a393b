#!/usr/bin/env python3
"""Hark's CDK app. `make synth` (offline) or `cdk deploy --all` from this folder (docs/deploy.md)."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # hark_infra, lambda_bundle; hark
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from hark_infra import build_app  # noqa: E402

if __name__ == "__main__":
    build_app().synth()
