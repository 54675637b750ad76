"""Where this machine's sparkring runtime is (the built TypeScript: dist/src/...) and which Node
runs it. The runtime: $SPARKRING_HOME, else the one the wheel carries (sparkring/_runtime, made by
`make wheel`), else the checkout this package sits in (spark-plugin/sparkring). Node:
$SPARKRING_NODE, else `node` on PATH."""

from __future__ import annotations

import os
import shutil
from typing import Optional

from sparkring.error_codes import RUNTIME_MISSING
from sparkring.failures import JobError

CLI = os.path.join("dist", "src", "cli", "main.js")
# The sparkring package: this module sits in its executor/ room.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# npm's layout: the sparkring package beside its dependencies, which Node finds by walking up.
WHEEL_RUNTIME = os.path.join(PACKAGE_DIR, "_runtime", "node_modules", "sparkring")


def runtime_home() -> str:
    """The folder holding dist/ (and package.json): JobError naming the places looked at when absent."""
    checkout = os.path.dirname(os.path.dirname(PACKAGE_DIR))
    given: Optional[str] = os.environ.get("SPARKRING_HOME")
    for home in (given,) if given else (WHEEL_RUNTIME, checkout):
        if os.path.isfile(os.path.join(home, CLI)):
            return home
    where = f"$SPARKRING_HOME={given}" if given else f"this package ({WHEEL_RUNTIME}) or its checkout {checkout}"
    raise JobError(
        f"the sparkring runtime is not in {where} (no {CLI} there); install the sparkring wheel `make wheel` builds, "
        "build the checkout with `make build`, or set SPARKRING_HOME to a built sparkring",
        RUNTIME_MISSING,
    )


def node_binary() -> str:
    """Node 20 for the client side of a run: $SPARKRING_NODE, else `node` on PATH."""
    node = os.environ.get("SPARKRING_NODE") or shutil.which("node")
    if not node:
        raise JobError("Node 20 is not on PATH: install it, or set SPARKRING_NODE to its binary", RUNTIME_MISSING)
    return node
