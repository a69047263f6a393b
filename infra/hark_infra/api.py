"""The REST API: a cached Lambda authorizer (Clerk JWTs) in front of the API Lambda, throttled and logged;
and the upload-status Lambda (an SQS event source), which shares the API's code asset.

Routes, the authorizer's kind, identity source and cache, CORS and throttling come from hark.api.http_api,
the definition the local gateway serves too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from aws_cdk import Annotations, Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hark.api.http_api import GATEWAY_RESPONSE_HEADERS, GATEWAY_RESPONSES, HTTP_API, gateway_response_cors
from hark.domain.keys import CAPTIONS_FOLDER, REVISIONS_FOLDER
from hark.domain.resources import (
    CHUNKS_PREFIX,
    PARTS_PREFIX,
    RENDITIONS_PREFIX,
    TRANSCRIPTS_PREFIX,
    UPLOADS_PREFIX,
    upload_status_function,
)
from hark.ops.lambda_runtime import function_environment
from hark_infra.common import (
    acknowledge,
    bucket_arn,
    list_bucket_statement,
    queue_arn,
    secret_arn,
    table_arn,
)
from hark_infra.config import LAMBDA_PYTHON, HarkConfig, powertools_layer_arn

RUNTIME = {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}[LAMBDA_PYTHON]


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: HarkConfig,
        web_origin: str,
        authorized_parties: list[str],
        cors_origins: list[str],
        code_dir: Path,
        code_has_deps: bool,
        **kwargs,
    ) -> None:
        super().__init__(scope, cid, **kwargs)

        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            powertools_layer_arn(Aws.REGION, Aws.PARTITION, config.powertools_layer_version),
        )
        code = lambda_.Code.from_asset(str(code_dir))
        environment = partial(  # every function's, but for its service name
            function_environment,
            stack=config.stack,
            account=Aws.ACCOUNT_ID,
            region=Aws.REGION,
            issuer=config.issuer,
            jwks_url=config.resolved_jwks_url,
            authorized_parties=authorized_parties,
            web_url=web_origin,
            max_upload_bytes=config.max_upload_bytes,
        )

        def function(fid: str, handler: str, service: str, memory: int, timeout: int) -> lambda_.Function:
            log_group = logs.LogGroup(
                self, f"{fid}Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
            )
            role = iam.Role(
                self,
                f"{fid}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{config.stack} {service} Lambda",
            )
            fn = lambda_.Function(
                self,
                fid,
                runtime=RUNTIME,
                architecture=lambda_.Architecture.X86_64,
                function_name=f"{config.stack}-{service}",
                handler=handler,
                code=code,
                layers=[layer],
                memory_size=memory,
                timeout=Duration.seconds(timeout),
                role=role,
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                tracing=lambda_.Tracing.ACTIVE,
                environment=environment(service=service),
            )
            # Only its own log group (the L2 would attach AWSLambdaBasicExecutionRole's logs:* on *).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="OwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
            acknowledge(
                fn,
                f"Python {LAMBDA_PYTHON}: the newest runtime with a published Powertools layer "
                "and wheels for every dependency; raise LAMBDA_PYTHON (hark_infra/config.py) "
                "with the layer.",
                "AwsSolutions-L1",
            )
            acknowledge(
                role,
                "X-Ray segments cannot be scoped to a resource (xray:Put* takes only '*').",
                "AwsSolutions-IAM5[Resource::*]",
            )
            if not code_has_deps:
                Annotations.of(fn).add_warning_v2(
                    "hark:lambda-deps",
                    "Lambda code has no bundled dependencies: run `python lambda_bundle.py` (the CDK CLI "
                    "does, through cdk.json) before deploying.",
                )
            return fn

        self.authorizer_fn = function("AuthorizerFunction", HTTP_API.authorizer.handler, "authorizer", 256, 10)
        self.api_fn = function("ApiFunction", HTTP_API.api_handler, "api", 512, 29)

        self._grant_api_function(config)
        # hark.api.auth.identify: an API key is one GetItem by its id, and last_used_at at most once a minute
        # (UpdateItem). The keys table only, never its index or the jobs; Clerk's JWKS is fetched over HTTPS.
        self.authorizer_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ApiKeysTable",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[table_arn(self, config.resources.api_keys_table.name)],
            )
        )
        self.upload_status_fn = self._upload_status_function(config, function)
        routes = ApiRoutes(
            self,
            "Routes",
            config=config,
            cors_origins=cors_origins,
            authorizer_fn=self.authorizer_fn,
            api_fn=self.api_fn,
        )
        self.api, self.authorizer = routes.api, routes.authorizer

        CfnOutput(self, "ApiUrl", value=self.api.url)

    def _grant_api_function(self, config: HarkConfig) -> None:
        res = config.resources
        audio, transcripts = res.audio_bucket.name, res.transcripts_bucket.name
        # Least privilege for the API: its tables read/write (jobs, idempotency, API keys and their rate-limit
        # windows; not the live service's tickets); presign uploads (PutObject on uploads/) and the viewer's playback links (GetObject on
        # uploads/ only, never chunks/); presign transcript links (GetObject on transcripts/); delete a job's
        # objects.
        table_resources = []
        for tdef in res.api_tables:
            table_resources.append(table_arn(self, tdef.name))
            table_resources += [table_arn(self, tdef.name, index.name) for index in tdef.indexes]
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="Tables",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:DescribeTable",
                ],
                resources=table_resources,
            )
        )
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PresignUploads",
                actions=["s3:PutObject"],
                resources=[bucket_arn(self, audio, f"{UPLOADS_PREFIX}*")],
            )
        )
        # Big uploads in parts (hark.domain.uploads): starting, presigning parts and completing are
        # s3:PutObject (above); resuming lists the parts S3 has, and DELETE .../multipart aborts.
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="MultipartUploads",
                actions=["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                resources=[bucket_arn(self, audio, f"{UPLOADS_PREFIX}*")],
            )
        )
        # The viewer's player (GET /jobs/{id}/audio): the upload, or a video's audio rendition.
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PresignAudioPlayback",
                actions=["s3:GetObject"],
                resources=[
                    bucket_arn(self, audio, f"{UPLOADS_PREFIX}*"),
                    bucket_arn(self, audio, f"{RENDITIONS_PREFIX}*"),
                ],
            )
        )
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PresignTranscriptLinks",
                actions=["s3:GetObject"],
                resources=[bucket_arn(self, transcripts, f"{TRANSCRIPTS_PREFIX}*")],
            )
        )
        # GET /jobs/{id}/transcript with caption settings writes the re-rendered srt/vtt beside the stored
        # files (hark.domain.keys.caption_key), and nowhere else.
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="StyledCaptions",
                actions=["s3:PutObject"],
                resources=[bucket_arn(self, transcripts, f"{TRANSCRIPTS_PREFIX}*/{CAPTIONS_FOLDER}*")],
            )
        )
        # PUT /jobs/{id}/transcript writes a correction's files as a new revision (hark.domain.keys.revision_name), and
        # the model's transcript stays as the worker wrote it.
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="TranscriptRevisions",
                actions=["s3:PutObject"],
                resources=[bucket_arn(self, transcripts, f"{TRANSCRIPTS_PREFIX}*/{REVISIONS_FOLDER}*")],
            )
        )
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteJobObjects",
                actions=["s3:DeleteObject"],
                resources=[
                    bucket_arn(self, audio, f"{UPLOADS_PREFIX}*"),
                    bucket_arn(self, audio, f"{CHUNKS_PREFIX}*"),
                    bucket_arn(self, audio, f"{RENDITIONS_PREFIX}*"),
                    bucket_arn(self, transcripts, f"{TRANSCRIPTS_PREFIX}*"),
                    bucket_arn(self, transcripts, f"{PARTS_PREFIX}*"),
                ],
            )
        )
        # DELETE /jobs/{id} lists each job prefix (hark.api.control) before deleting: s3:ListBucket, only below
        # the job prefixes.
        for sid, bdef, prefixes in (
            ("ListJobAudio", res.audio_bucket, [UPLOADS_PREFIX, CHUNKS_PREFIX, RENDITIONS_PREFIX]),
            ("ListJobTranscripts", res.transcripts_bucket, [TRANSCRIPTS_PREFIX, PARTS_PREFIX]),
        ):
            self.api_fn.add_to_role_policy(list_bucket_statement(self, sid, bdef.name, prefixes))
        # Verifying the links in emails (GET /links/{token}): the link key only, never Clerk's.
        self.api_fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="LinkSigningKey",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret_arn(self, res.link_signing_secret)],
            )
        )
        acknowledge(
            _role(self.api_fn),
            "Object ARNs are scoped to a key prefix (uploads/, chunks/, renditions/, "
            "transcripts/, parts/, a job's captions/ and revisions/): every job has its own keys below it; table ARNs "
            "include their indexes.",
            *[
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{b}/{p}*]"
                for b, p in (
                    (audio, UPLOADS_PREFIX),
                    (audio, CHUNKS_PREFIX),
                    (audio, RENDITIONS_PREFIX),
                    (transcripts, TRANSCRIPTS_PREFIX),
                    (transcripts, PARTS_PREFIX),
                    (transcripts, f"{TRANSCRIPTS_PREFIX}*/{CAPTIONS_FOLDER}"),
                    (transcripts, f"{TRANSCRIPTS_PREFIX}*/{REVISIONS_FOLDER}"),
                )
            ],
        )

    def _upload_status_function(
        self, config: HarkConfig, function: Callable[..., lambda_.Function]
    ) -> lambda_.Function:
        res = config.resources
        audio = res.audio_bucket.name
        # The upload-status function (docs/architecture.md, "QUEUED when the upload lands"): fed by the
        # upload-status queue, which the uploads topic fills with each upload's S3 event.
        status_def = upload_status_function(res)
        fn = function("UploadStatusFunction", status_def.handler, "upload-status", 256, status_def.timeout_seconds)
        status_queue = sqs.Queue.from_queue_arn(self, "UploadStatusQueue", queue_arn(self, status_def.queue.name))
        # Partial batch responses: one bad record comes back alone (and reaches the DLQ), not the batch.
        # The event source adds the queue's receive/delete grants to the function's role.
        fn.add_event_source(
            event_sources.SqsEventSource(
                status_queue, batch_size=status_def.batch_size, report_batch_item_failures=True
            )
        )
        # hark.domain.arrivals: read the job, move it to QUEUED, or delete an upload no job accounts for.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="JobsTable",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[table_arn(self, res.jobs_table.name)],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteOrphanUploads",
                actions=["s3:DeleteObject"],
                resources=[bucket_arn(self, audio, f"{UPLOADS_PREFIX}*")],
            )
        )
        acknowledge(
            _role(fn),
            "Object ARN scoped to the uploads/ prefix: each job's upload lives below it.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{audio}/{UPLOADS_PREFIX}*]",
        )
        return fn


class ApiRoutes(Construct):
    """The REST API: its stage (throttled, logged), API Gateway's own answers, the Lambda authorizer and every
    route of hark.api.http_api to the API function. Its resources are the stack's children, not this construct's:
    their logical IDs stay the stack's (a construct scope would rename them, and a renamed resource is
    replaced on deploy)."""

    def __init__(
        self,
        stack: Stack,
        cid: str,
        *,
        config: HarkConfig,
        cors_origins: list[str],
        authorizer_fn: lambda_.Function,
        api_fn: lambda_.Function,
    ) -> None:
        super().__init__(stack, cid)
        access_logs = logs.LogGroup(
            stack, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            stack,
            "Api",
            rest_api_name=f"{config.stack}-api",
            description="Hark transcription jobs",
            # Logging (access and execution) needs the account's API Gateway CloudWatch role: CDK makes
            # it and the AWS::ApiGateway::Account setting that points at it, kept on stack deletion.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy_options=apigw.StageOptions(
                stage_name=HTTP_API.stage,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                metrics_enabled=True,
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                # Every authorized party's origin: with more than one, API Gateway's preflight answers the
                # request's Origin when it is one of them (and the first otherwise), with Vary: Origin.
                allow_origins=list(cors_origins),
                allow_methods=list(HTTP_API.cors.allow_methods),
                allow_headers=list(HTTP_API.cors.allow_headers),
                max_age=Duration.seconds(HTTP_API.cors.max_age_seconds),
            ),
        )
        acknowledge(
            self.api.node.find_child("CloudWatchRole"),
            "API Gateway's account-wide logging role: the AWS managed policy is the documented one for it.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
        )
        # API Gateway's own answers (401, 403, unknown route, throttling, ...) in the API's error shape,
        # from the one definition the local gateway sends too (hark.api.http_api.GATEWAY_RESPONSES). Each
        # carries the CORS origin, or the browser hides it; a specific type replaces DEFAULT_4XX whole.
        gateway_headers = {
            **{k: f"'{v}'" for k, v in GATEWAY_RESPONSE_HEADERS.items()},
            **gateway_response_cors(cors_origins),
        }
        for response in GATEWAY_RESPONSES:
            self.api.add_gateway_response(
                f"Gateway{response.response_type.title().replace('_', '')}",
                type=apigw.ResponseType.of(response.response_type),
                status_code=str(response.status) if response.status is not None else None,
                response_headers={**gateway_headers, **{k: f"'{v}'" for k, v in response.headers}},
                templates={"application/json": response.template},
            )

        auth = HTTP_API.authorizer
        # The policy allows the whole stage (resource wildcard), so a cached answer fits every route.
        self.authorizer: apigw.IAuthorizer
        if auth.kind == "TOKEN":
            self.authorizer = apigw.TokenAuthorizer(
                stack,
                "ClerkAuthorizer",
                handler=authorizer_fn,
                identity_source=apigw.IdentitySource.header(auth.identity_header),
                results_cache_ttl=Duration.seconds(auth.result_cache_seconds),
            )
        else:
            self.authorizer = apigw.RequestAuthorizer(
                stack,
                "ClerkAuthorizer",
                handler=authorizer_fn,
                identity_sources=[apigw.IdentitySource.header(auth.identity_header)],
                results_cache_ttl=Duration.seconds(auth.result_cache_seconds),
            )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=False, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(api_fn, proxy=True)

        resources: dict[str, apigw.IResource] = {"": self.api.root}
        for path in HTTP_API.resource_paths:
            parent, _, part = path.rpartition("/")
            resources[path] = resources[parent].add_resource(part)
        for route in HTTP_API.routes:
            if route.authorized:
                resources[route.path].add_method(
                    route.method,
                    integration,
                    authorizer=self.authorizer,
                    authorization_type=apigw.AuthorizationType.CUSTOM,
                    request_validator=validator,
                )
            else:
                method = resources[route.path].add_method(
                    route.method,
                    integration,
                    authorization_type=apigw.AuthorizationType.NONE,
                    request_validator=validator,
                )
                acknowledge(
                    method,
                    "The link itself is the credential: a signed, expiring token checked by "
                    "the API Lambda (hark.domain.links).",
                    "AwsSolutions-APIG4",
                    "AwsSolutions-COG4",
                )

        acknowledge(
            self.api,
            "CORS preflight (OPTIONS) must answer without credentials; every other method uses the Lambda authorizer.",
            "AwsSolutions-APIG4",
            "AwsSolutions-COG4",
        )
        acknowledge(
            self.api,
            "Bodies are small JSON validated by the handler's pydantic models; request parameters are validated here.",
            "AwsSolutions-APIG2",
        )
        acknowledge(
            self.api,
            "Throttled per stage and authenticated by the authorizer; audio never "
            "passes through the API. A WAF web ACL is an optional extra (docs/deploy.md).",
            "AwsSolutions-APIG3",
        )


def _role(fn: lambda_.Function) -> iam.IRole:
    """The function's role (every function here is built with its own, so it is never None)."""
    if fn.role is None:
        raise ValueError(f"{fn.node.path} has no role")
    return fn.role
