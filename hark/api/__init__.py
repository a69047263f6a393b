"""The API side: what the Lambda functions in lambdas/ run behind API Gateway.

Imports hark.domain only; the Lambda asset carries this package, hark.domain and lambdas/.
"""

__all__ = [
    "auth",  # Clerk session-token verification for the authorizer
    "control",  # the API's operations over the domain
    "cursors",  # signed list cursors
    "http_api",  # the HTTP surface: routes, authorizer, CORS, throttling (read by infra and the local gateway)
    "json_body",  # request body parsing with clear errors
    "webapp",  # the web page's security headers and CSP
]
