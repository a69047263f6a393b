"""The Lambda entry points (api, authorizer, upload_status): thin handlers over hark.api and hark.domain."""
