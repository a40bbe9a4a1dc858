"""`python -m jobqueue_worker`: the reference worker, configured by `JOBQ_*` environment variables."""

from jobqueue_worker.config import WorkerSettings
from jobqueue_worker.runner import configure_logging, run


def main() -> None:
    settings = WorkerSettings()
    configure_logging(settings.log_level, settings.log_format)
    run(settings)


if __name__ == "__main__":
    main()
