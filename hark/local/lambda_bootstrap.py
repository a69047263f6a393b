"""One Lambda execution environment's runtime loop, run as a script by hark.local.lambda_process:

    python -I -S lambda_bootstrap.py HANDLER PATH [PATH ...]

`-I -S`: nothing from the caller's environment or any site-packages; sys.path is exactly the PATHs (the
asset, then the layer's and the runtime's packages, in Lambda's order). It imports the handler once (the
init phase) and then answers one invocation at a time: a JSON line {"event", "context"} in on stdin, a JSON
line {"result"} or {"error"} out on the original stdout. The handler's own prints and logs go to stderr,
as Lambda sends both streams to the function's log. Only the standard library is used here.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """Lambda's context object, from the fields the caller sends."""

    def __init__(self, fields: dict):
        self.function_name = fields["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = fields["deadline"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main() -> None:
    handler, paths = sys.argv[1], sys.argv[2:]
    sys.path[:0] = paths
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # fd 1 is the log from here on
    sys.stdout = sys.stderr
    module, _, name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module), name)
        init_error = None
    except Exception as err:  # Lambda answers every invocation with the init error
        function, init_error = None, _error(err)
    replies.write(json.dumps({"ready": init_error is None, "error": init_error}) + "\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if function is None:
            reply = {"error": init_error}
        else:
            try:
                reply = {"result": function(request["event"], LambdaContext(request["context"]))}
            except Exception as err:
                reply = {"error": _error(err)}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


def _error(err: BaseException) -> dict:
    """As Lambda reports a function error: errorType, errorMessage, stackTrace."""
    return {
        "errorType": type(err).__name__,
        "errorMessage": str(err),
        "stackTrace": traceback.format_exception(err),
    }


if __name__ == "__main__":
    main()
