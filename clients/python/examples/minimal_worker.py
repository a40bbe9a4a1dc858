"""The smallest useful worker: greets whoever a `greetings` job names.

JOBQ_TARGET=localhost:50051 python minimal_worker.py
"""

import os
from typing import Any

from jobqueue import JobContext, NonRetryableError, Worker

worker = Worker(os.environ.get("JOBQ_TARGET", "localhost:50051"), concurrency=4)


@worker.handler("greetings")
async def greet(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    if "name" not in payload:
        raise NonRetryableError("payload needs a name")  # dead at once: retrying cannot help
    return {"greeting": f"Hello, {payload['name']}!", "attempt": ctx.attempt}


if __name__ == "__main__":
    worker.run_forever()  # until SIGTERM or Ctrl-C: running jobs finish first
