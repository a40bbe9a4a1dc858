"""Reference worker settings: one object per process, from flags and `JOBQ_*` environment variables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobqueue import Tls
from jobqueue.errors import NonRetryableError
from jobqueue.logs import LogFormat
from jobqueue_worker.handlers.email import EmailSettings, parse_address
from jobqueue_worker.handlers.image import ImageLimits, ImageSettings
from jobqueue_worker.handlers.image_budget import MAX_OPERATIONS_CEILING, check_output_dir

EMAIL_QUEUE = "emails"
IMAGE_QUEUE = "images"
#: The queues this worker has handlers for; any other would only collect failed attempts.
KNOWN_QUEUES = (EMAIL_QUEUE, IMAGE_QUEUE)


def _split_commas(value: object) -> object:
    """Accept "a,b" (env vars, one flag) as well as a list (repeated flags, Python callers)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class WorkerSettings(BaseSettings):
    """Every knob of `jobq worker`. Flags override the environment; durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="JOBQ_", extra="ignore")

    target: str = Field("localhost:50051", description="the server's host:port")
    # NoDecode: the env value is a comma list, not the JSON pydantic-settings expects by default.
    queues: Annotated[tuple[str, ...], NoDecode] = (EMAIL_QUEUE, IMAGE_QUEUE)
    concurrency: int = Field(8, ge=1, le=1000)
    grace_seconds: float = Field(30.0, ge=0, description="how long running jobs may finish on SIGTERM")
    worker_id: str | None = Field(None, description="shown on held jobs; default host:pid:random")

    # The server's credentials (docs/security.md); unset ones are left to the client library,
    # which also reads JOBQ_TLS, JOBQ_TLS_SERVER_NAME and JOBQ_TOKEN_FILE.
    token: SecretStr | None = Field(None, description="API token of the worker role")
    tls_ca: Path | None = Field(None, description="PEM CA of the server's certificate; implies TLS")
    tls_client_cert: Path | None = Field(None, description="PEM client certificate (mTLS)")
    tls_client_key: Path | None = Field(None, description="PEM key of tls_client_cert")

    def tls(self) -> Tls | None:
        """The TLS these settings ask for; None leaves it to the environment."""
        if self.tls_ca is None and self.tls_client_cert is None and self.tls_client_key is None:
            return None
        return Tls(ca_file=self.tls_ca, cert_file=self.tls_client_cert, key_file=self.tls_client_key)

    smtp_host: str = "localhost"
    smtp_port: int | None = Field(None, ge=1, le=65535, description="default 25, 587 or 465 by security")
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(None, description="the From address when a payload has none")
    smtp_validate_certs: bool = True
    smtp_cafile: Path | None = None
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    email_parse_timeout_seconds: float = Field(
        30.0, gt=0, description="to parse, check and serialize one email's headers, off the event loop"
    )

    image_output_dir: Path = Path(".jobq-data/images")
    image_input_dirs: Annotated[tuple[Path, ...], NoDecode] = ()
    image_allow_private_networks: bool = False
    image_max_download_bytes: int = Field(20 * 1024 * 1024, ge=1)
    image_download_timeout_seconds: float = Field(10.0, gt=0)
    image_max_pixels: int = Field(50_000_000, ge=1, description="of the input and any image in between")
    image_cafile: Path | None = None
    # One job's budget (handlers.image_budget): past a limit the job fails, its outputs deleted.
    image_max_operations: int = Field(20, ge=1, le=MAX_OPERATIONS_CEILING)
    image_max_output_pixels: int = Field(50_000_000, ge=1, description="of one output image")
    image_max_total_output_pixels: int = Field(100_000_000, ge=1, description="of a job's outputs")
    image_max_output_bytes: int = Field(100 * 1024 * 1024, ge=1, description="of a job's output files")
    image_job_timeout_seconds: float = Field(60.0, gt=0, description="checked between Pillow steps")

    log_level: str = "INFO"
    log_format: LogFormat = "text"

    _split_lists = field_validator("queues", "image_input_dirs", mode="before")(_split_commas)

    @field_validator("queues")
    @classmethod
    def _known_queues(cls, queues: Sequence[str]) -> tuple[str, ...]:
        if not queues:
            raise ValueError(f"give at least one of {', '.join(KNOWN_QUEUES)}")
        unknown = [queue for queue in queues if queue not in KNOWN_QUEUES]
        if unknown:
            handled = ", ".join(KNOWN_QUEUES)
            raise ValueError(f"no handler for {', '.join(unknown)}; this worker handles {handled}")
        return tuple(dict.fromkeys(queues))

    @field_validator("image_output_dir")
    @classmethod
    def _bounded_output_dir(cls, output_dir: Path) -> Path:
        # Every output's path is in a job's result, which must stay far under the ack limit.
        check_output_dir(output_dir.resolve())
        return output_dir

    @field_validator("smtp_from")
    @classmethod
    def _valid_sender(cls, sender: str | None) -> str | None:
        # Checked at startup: a bad default sender would otherwise make every email job dead.
        if sender is not None:
            try:
                parse_address("smtp_from", sender)
            except NonRetryableError as error:
                raise ValueError(str(error)) from error
        return sender

    def email_settings(self) -> EmailSettings:
        password = self.smtp_password.get_secret_value() if self.smtp_password is not None else None
        return EmailSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            security=self.smtp_security,
            username=self.smtp_username,
            password=password,
            default_sender=self.smtp_from,
            timeout_seconds=self.smtp_timeout_seconds,
            parse_timeout_seconds=self.email_parse_timeout_seconds,
            validate_certs=self.smtp_validate_certs,
            cafile=self.smtp_cafile,
        )

    def image_settings(self) -> ImageSettings:
        # Absolute paths: results name the output files, and readers may not share our cwd.
        return ImageSettings(
            output_dir=self.image_output_dir.resolve(),
            allowed_input_dirs=tuple(path.resolve() for path in self.image_input_dirs),
            max_download_bytes=self.image_max_download_bytes,
            download_timeout_seconds=self.image_download_timeout_seconds,
            allow_private_networks=self.image_allow_private_networks,
            max_pixels=self.image_max_pixels,
            cafile=self.image_cafile,
            limits=ImageLimits(
                max_operations=self.image_max_operations,
                max_output_pixels=self.image_max_output_pixels,
                max_total_output_pixels=self.image_max_total_output_pixels,
                max_output_bytes=self.image_max_output_bytes,
                job_timeout_seconds=self.image_job_timeout_seconds,
            ),
        )
