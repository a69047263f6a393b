"""The README's curl examples, copied out of README.md and run as written (bash, curl, `hark token`)
against `hark up`: every command must answer the JSON the API documents, never an error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO

MARK = "@@README-COMMAND-DONE@@"


def readme_curl_block() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"With curl:\s*```sh\n(.*?)```", text, re.S)
    assert match, "README.md has no ```sh block after 'With curl:'"
    return match.group(1)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined (a quoted -d body may span lines), comments dropped."""
    out, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if line.endswith("\\") or current.count("'") % 2:  # a continuation, or inside a quoted body
            continue
        out.append(current.rstrip())
        current = ""
    return out


def test_readme_curl_examples_run_against_the_local_stack(live_stack):
    port = live_stack.url.rsplit(":", 1)[1]
    cmds = [c.replace("localhost:8000", f"localhost:{port}") for c in commands(readme_curl_block())]
    curls = [c for c in cmds if c.startswith("curl")]
    assert len(curls) >= 4 and any("webhook" in c for c in curls) and any("status=" in c for c in curls)
    script = "set -euo pipefail\n" + "\n".join(
        c + (f"\necho; echo {MARK}" if c.startswith("curl") else "") for c in cmds
    )
    env = {**live_stack.env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(part) for part in result.stdout.split(MARK)[:-1]]
    assert len(answers) == len(curls), result.stdout
    for command, answer in zip(curls, answers, strict=True):
        assert "error" not in answer, (command, answer)
    by_command = dict(zip(curls, answers, strict=True))
    created = [a for c, a in by_command.items() if "-X POST" in c and "/jobs" in c]
    assert created[0]["job"]["notify"] == ["email"] and created[0]["upload"]["method"] == "POST"
    assert created[1]["job"]["notify"] == ["webhook"] and created[1]["job"]["webhook"]["url"].endswith("/hooks/hark")
    [secret] = [a for c, a in by_command.items() if "/webhook-secret" in c]
    assert secret["secret"].startswith("whsec_")
    [completed] = [a for c, a in by_command.items() if "status=COMPLETED" in c]
    assert all(j["status"] == "COMPLETED" for j in completed["items"])
