"""Create a run that is never launched: ``python -m runlens.demo.create_run JOB [TAGS_JSON]``.

The run is stored with status NOT_STARTED and stays so: nothing queues or launches
it. Real deployments hold such runs (a launch that failed before the run was queued,
runs created by tooling), and a client must cope with them. Used by
:meth:`runlens.demo.server.DemoDagster.create_run` with ``DAGSTER_HOME`` set; prints
the run id.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from dagster import DagsterInstance

    from runlens.demo.definitions import defs

    if not 1 <= len(argv) <= 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    job_name = argv[0]
    tags = json.loads(argv[1]) if len(argv) > 1 else {}
    with DagsterInstance.get() as instance:
        run = instance.create_run_for_job(defs.get_job_def(job_name), tags=tags)
    print(run.run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
