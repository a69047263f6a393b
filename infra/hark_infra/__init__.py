"""Hark's AWS CDK app: every AWS resource, built from the one definition in `hark.domain.resources`."""

from hark_infra.app import build_app

__all__ = ["build_app"]
