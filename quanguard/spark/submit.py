"""Entry point for ``spark-submit``: ``spark-submit ... submit.py mask IN -o OUT``.

Runs ``quanguard spark ARGS...`` in the driver that spark-submit started, so the session
(master, executors' Python, resources) is the one spark-submit configured.
"""

from __future__ import annotations

import sys


def main() -> None:
    from quanguard.cli.main import main as cli

    cli(["spark", *sys.argv[1:]])


if __name__ == "__main__":
    main()
