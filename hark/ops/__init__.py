"""Operations: what operators and infra use, never a request path.

`dlq` inspects and replays dead-lettered messages (`hark dlq`), `scaling` is the scaling policy read by
infra/ and loadtests/, `lambda_runtime` the Lambda runtime's facts read by infra/, the asset bundler and
`make up`.
"""

__all__ = ["dlq", "lambda_runtime", "scaling"]
