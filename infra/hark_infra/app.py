"""Assembles Hark's stacks into one CDK app, with cdk-nag's AwsSolutions checks over all of them."""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from hark_infra.api import ApiStack
from hark_infra.config import HarkConfig, cdk_json_context
from hark_infra.email import EmailStack
from hark_infra.monitoring import MonitoringStack
from hark_infra.queues import QueuesStack
from hark_infra.storage import StorageStack
from hark_infra.tables import TablesStack
from hark_infra.web import WebContentStack, WebStack
from hark_infra.workers import WorkersStack

INFRA = Path(__file__).resolve().parents[1]


def lambda_code_dir() -> tuple[Path, bool]:
    """Stage the Lambda asset: source plus dependencies when lambda_bundle.py has built them."""
    import lambda_bundle  # infra/lambda_bundle.py

    with_deps = lambda_bundle.DEPS.joinpath(".requirements").exists()
    return lambda_bundle.stage(lambda_bundle.BUILD, with_deps=with_deps), with_deps


def build_app(context: dict | None = None, outdir: str | None = None) -> cdk.App:
    """The whole app. Outside the CDK CLI (`make synth`, tests) cdk.json's context is applied here."""
    ctx = dict(context or {})
    if "CDK_CONTEXT_JSON" not in os.environ:
        ctx = {**cdk_json_context(), **ctx}
    app = cdk.App(context=ctx, outdir=outdir or os.environ.get("CDK_OUTDIR") or str(INFRA / "cdk.out"))
    config = HarkConfig.from_context(app)
    stack = config.stack
    tags = {"project": "hark", "hark:stack": stack}

    def props(name: str, description: str) -> dict:
        # Environment-agnostic: synthesises with no AWS account or region lookup.
        return dict(stack_name=f"{stack}-{name}", description=f"Hark ({stack}): {description}", tags=tags)

    web = WebStack(app, "Web", config=config, **props("web", "static web app on S3 and CloudFront"))
    web_origin = web.origin
    parties = list(config.authorized_parties) or [web_origin]
    web_origins = sorted(set(parties) | {web_origin}, key=str)

    queues = QueuesStack(app, "Queues", config=config, **props("queues", "transcribe and notify queues"))
    tables = TablesStack(
        app, "Tables", config=config, **props("tables", "jobs, idempotency, API keys and live tickets tables")
    )
    email = EmailStack(
        app, "Email", config=config, **props("email", "SES sender identity, email link key, Clerk secret key")
    )
    storage = StorageStack(
        app, "Storage", config=config, web_origins=web_origins, **props("storage", "audio and transcripts buckets")
    )
    storage.add_stack_dependency(queues, "the bucket notification needs the queue and its policy")

    code_dir, has_deps = lambda_code_dir()
    api = ApiStack(
        app,
        "Api",
        config=config,
        web_origin=web_origin,
        authorized_parties=parties,
        cors_origins=web_origins,
        code_dir=code_dir,
        code_has_deps=has_deps,
        **props("api", "REST API and Lambdas"),
    )
    api.add_stack_dependency(storage)
    api.add_stack_dependency(tables)
    api.add_stack_dependency(queues, "the upload-status function reads the upload-status queue")

    # Separate from Web: config.json needs the API URL, and Api already depends on Web (web.py's docstring).
    WebContentStack(
        app,
        "WebContent",
        config=config,
        web=web,
        api_url=api.api.url,
        **props("web-content", "web app files and config.json, deployed into the web bucket"),
    )

    workers = WorkersStack(
        app,
        "Workers",
        config=config,
        web_origin=web_origin,
        cors_origins=web_origins,
        email_identity=email.identity_name,
        api_url=api.api.url,
        **props("workers", "GPU transcription and notification workers"),
    )
    for dependency in (queues, tables, storage, email, api):
        workers.add_stack_dependency(dependency)

    monitoring = MonitoringStack(
        app,
        "Monitoring",
        config=config,
        cluster_name=workers.cluster_name,
        transcription_service=workers.transcription_service_name,
        api_function_name=f"{stack}-api",
        **props("monitoring", "dashboard and alarms"),
    )
    monitoring.add_stack_dependency(api)
    monitoring.add_stack_dependency(workers)

    # Acknowledged findings are also written into each resource's Metadata (cdk_nag.rules_to_suppress),
    # so the reasons travel with the templates.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app
