"""The shared domain: what the API, the workers and the CDK app all read."""
