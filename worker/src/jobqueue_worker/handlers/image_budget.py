"""What one image job may spend: operations, output pixels and bytes, and time.

The budget is checked at checkpoints of the render thread: before the image is decoded, before
each operation, before each output is encoded and before it is written. Past a limit, the job
fails with NonRetryableError naming the payload field and the worker setting.

What can be interrupted, and what cannot: a checkpoint stops the job *between* steps, so the
deadline or a cancellation takes effect when the Pillow call under way returns. One call (a decode,
a resize, a watermark, an encode) is never interrupted: Python cannot stop a thread, and Pillow's
C code has no cancellation. So a job may overrun its deadline by one such step, which the pixel
limits bound (``max_pixels`` for the input and intermediates, ``max_output_pixels`` for an output).

Every file a job writes is recorded here. A job that fails, for whatever reason, or is cancelled
deletes them all, whether the render thread is still running or had already finished.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from jobqueue.errors import NonRetryableError

from .image_ops import Operation, Resize

#: The most operations a job may be allowed. With the output folder's length bounded below, this
#: bounds the result: 100 entries of at most ~1.3 KB each, far under the 1 MiB an ack may carry.
MAX_OPERATIONS_CEILING = 100
#: The longest output folder (as bytes), since every output's path is in the result.
MAX_OUTPUT_DIR_BYTES = 1024


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """One job's allowance; the names of the worker settings are ``image_`` + the field name."""

    max_operations: int = 20
    #: Pixels in one output image.
    max_output_pixels: int = 50_000_000
    #: Pixels in all of a job's outputs together.
    max_total_output_pixels: int = 100_000_000
    #: Bytes of all of a job's output files together.
    max_output_bytes: int = 100 * 1024 * 1024
    #: From the moment the handler starts, the download included.
    job_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_operations <= MAX_OPERATIONS_CEILING:
            raise ValueError(f"max_operations must be from 1 to {MAX_OPERATIONS_CEILING}")
        if min(self.max_output_pixels, self.max_total_output_pixels, self.max_output_bytes) < 1:
            raise ValueError("the pixel and byte limits must be at least 1")
        if not self.job_timeout_seconds > 0:
            raise ValueError("job_timeout_seconds must be more than 0")

    def check_operations(self, operations: object) -> None:
        """Refuse a list longer than allowed before any of it is parsed or downloaded."""
        if isinstance(operations, list) and len(operations) > self.max_operations:
            raise NonRetryableError(
                f"operations: {len(operations)} operations, over the worker's limit of "
                f"{self.max_operations} per job (image_max_operations)"
            )


def check_output_dir(output_dir: Path) -> None:
    if len(os.fsencode(output_dir)) > MAX_OUTPUT_DIR_BYTES:
        raise ValueError(f"the image output folder's path is longer than {MAX_OUTPUT_DIR_BYTES} bytes")


class JobAbandoned(Exception):
    """Raised in the render thread once the job was cancelled: nobody waits for its result."""


class JobBudget:
    """One job's spending and its files, shared by the handler (the loop) and its render thread."""

    def __init__(self, limits: ImageLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline = clock() + limits.job_timeout_seconds
        self._pixels = 0
        self._bytes = 0
        self._files: list[Path] = []
        self._lock = threading.Lock()  # orders commit() (thread) against abandon() (loop)
        self._abandoned = False
        self._committed = False

    def check_time(self, where: str, stage: str) -> None:
        """A checkpoint: raise if the job was cancelled or its time is up."""
        now = self._clock()
        if self._abandoned:
            raise JobAbandoned
        if now > self._deadline:
            raise NonRetryableError(
                f"{where}: {stage}: the job took longer than the worker's "
                f"{self.limits.job_timeout_seconds:g} s limit (image_job_timeout_seconds)"
            )

    def before_operation(self, where: str, operation: Operation, image: Image.Image) -> None:
        self.check_time(where, "not run")
        if isinstance(operation, Resize):  # its size is known ahead: refuse before the work
            self._check_pixels(where, operation.target_size(image.size))

    def charge_output(self, where: str, size: tuple[int, int]) -> None:
        """Before an output is encoded: its pixels, and the time."""
        self.check_time(where, "output not written")
        self._check_pixels(where, size)
        self._pixels += size[0] * size[1]

    def charge_bytes(self, where: str, count: int) -> None:
        """Before an encoded output is written: nothing over the limit reaches the disk."""
        self.check_time(where, "output not written")
        if self._bytes + count > self.limits.max_output_bytes:
            raise NonRetryableError(
                f"{where}: the outputs would take {self._bytes + count} bytes, over the worker's "
                f"{self.limits.max_output_bytes}-byte limit per job (image_max_output_bytes)"
            )
        self._bytes += count

    def _check_pixels(self, where: str, size: tuple[int, int]) -> None:
        pixels = size[0] * size[1]
        if pixels > self.limits.max_output_pixels:
            raise NonRetryableError(
                f"{where}: a {size[0]}x{size[1]} output exceeds the worker's "
                f"{self.limits.max_output_pixels}-pixel limit per output (image_max_output_pixels)"
            )
        if self._pixels + pixels > self.limits.max_total_output_pixels:
            raise NonRetryableError(
                f"{where}: the outputs would total {self._pixels + pixels} pixels, over the worker's "
                f"{self.limits.max_total_output_pixels}-pixel limit per job (image_max_total_output_pixels)"
            )

    # --- the job's files ---

    def track(self, path: Path) -> None:
        """Record an output before it is written, so that no written file goes unrecorded."""
        self._files.append(path)

    def commit(self) -> None:
        """In the render thread, once every output is written: the job keeps its files."""
        with self._lock:
            if self._abandoned:
                raise JobAbandoned
            self._committed = True

    def abandon(self) -> None:
        """On the loop, when the job is cancelled: stop the render and drop its files.

        A render that already committed has finished (its result is lost with the cancellation),
        so its files are deleted here; otherwise the thread deletes them at its next checkpoint.
        """
        with self._lock:
            self._abandoned = True
            committed = self._committed
        if committed:
            self.discard()

    def discard(self) -> None:
        for path in self._files:
            path.unlink(missing_ok=True)
