"""The image handler's per-job budget, on real Pillow images and real files in a temp folder.

A job may use so many operations, output pixels (per image and in total), output bytes and so
much time; past a limit it fails non-retryably, naming the limit and the payload field, and a job
that fails for any reason, or is cancelled, leaves none of its outputs behind.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from jobqueue import convert
from jobqueue.errors import NonRetryableError
from jobqueue_worker.config import WorkerSettings
from jobqueue_worker.handlers.image import ImageLimits, ImageSettings, process_image

from .conftest import HttpServer
from .test_image_handler import JOB, encoded, picture

WAIT_S = 10.0


def noise(side: int = 256) -> bytes:
    """A PNG that compresses poorly, so each output's size is predictable from the first."""
    return encoded(Image.effect_noise((side, side), 64).convert("RGB"))


def budget(tmp_path: Path, **limits: Any) -> ImageSettings:
    return ImageSettings(output_dir=tmp_path / "out", limits=ImageLimits(**limits))


def files_in(folder: Path) -> list[str]:
    """Every entry, temporary files included; none when the folder was never made."""
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


async def render(settings: ImageSettings, image: bytes, operations: list[Any]) -> dict[str, Any]:
    return await process_image({"operations": operations}, settings, job_id=JOB, payload_bytes=image)


# --- operations per job ---------------------------------------------------------------------------


async def test_more_operations_than_the_limit_are_refused_before_downloading(
    http_server: HttpServer, tmp_path: Path
) -> None:
    # The review's payload: 12,000 converts of a tiny image wrote 12,000 files.
    url = http_server.add("/photo.png", encoded(picture(8, 8)))
    settings = ImageSettings(output_dir=tmp_path / "out", allow_private_networks=True)
    operations = [{"op": "convert", "format": "png"}] * 12_000

    with pytest.raises(NonRetryableError, match=r"^operations: 12000 operations.*\(image_max_operations\)"):
        await process_image({"imageUrl": url, "operations": operations}, settings, job_id=JOB)
    assert http_server.requests == []
    assert files_in(settings.output_dir) == []


def test_the_operation_limit_cannot_be_set_past_its_ceiling() -> None:
    with pytest.raises(ValueError, match="max_operations"):
        ImageLimits(max_operations=101)
    with pytest.raises(ValidationError, match="image_max_operations"):
        WorkerSettings(image_max_operations=101)


async def test_the_result_at_the_operation_ceiling_stays_far_under_the_ack_limit(tmp_path: Path) -> None:
    deep = tmp_path
    while len(str(deep)) < 900:  # near the longest output folder allowed (1024 bytes)
        deep /= "d" * 100
    settings = ImageSettings(output_dir=deep, limits=ImageLimits(max_operations=100))
    formats = ["png", "webp", "gif", "jpeg"]
    operations = [{"op": "convert", "format": formats[n % 4]} for n in range(100)]

    result = await render(settings, encoded(picture(1, 1)), operations)

    assert len(result["outputs"]) == 100
    assert len(json.dumps(result)) < 192 * 1024
    assert convert.to_struct(result, "result").ByteSize() < 192 * 1024  # the ack limit: 1 MiB


def test_an_output_folder_too_long_to_bound_the_result_is_refused(tmp_path: Path) -> None:
    too_long = tmp_path.joinpath(*["d" * 200] * 5)

    with pytest.raises(ValueError, match="1024 bytes"):
        ImageSettings(output_dir=too_long)


# --- output pixels and bytes ----------------------------------------------------------------------


async def test_an_output_over_the_per_image_pixel_limit_is_refused_and_earlier_outputs_removed(
    tmp_path: Path,
) -> None:
    settings = budget(tmp_path, max_output_pixels=1_000_000)
    operations = ["thumbnail", {"op": "resize", "width": 2000}]

    with pytest.raises(
        NonRetryableError,
        match=r"^operations\[1\] \(resize\): a 2000x1500 output .*1000000-pixel limit "
        r"per output \(image_max_output_pixels\)$",
    ):
        await render(settings, encoded(picture(800, 600)), operations)
    assert files_in(settings.output_dir) == []


async def test_outputs_over_the_total_pixel_limit_are_refused_and_earlier_outputs_removed(
    tmp_path: Path,
) -> None:
    settings = budget(tmp_path, max_total_output_pixels=400 * 300 + 800 * 600)
    operations = [{"op": "resize", "width": width} for width in (400, 800, 1600)]

    with pytest.raises(
        NonRetryableError, match=r"^operations\[2\] \(resize\): .*\(image_max_total_output_pixels\)"
    ):
        await render(settings, encoded(picture(800, 600)), operations)
    assert files_in(settings.output_dir) == []


async def test_outputs_over_the_byte_limit_are_refused_before_writing_and_earlier_outputs_removed(
    tmp_path: Path,
) -> None:
    image, to_png = noise(), {"op": "convert", "format": "png"}
    one_output = (await render(budget(tmp_path / "probe"), image, [to_png]))["outputs"][0]["bytes"]
    settings = budget(tmp_path, max_output_bytes=int(one_output * 2.5))
    operations = [to_png, to_png, to_png]

    with pytest.raises(
        NonRetryableError, match=r"^operations\[2\] \(convert\): .*\(image_max_output_bytes\)"
    ):
        await render(settings, image, operations)
    assert files_in(settings.output_dir) == []


async def test_outputs_written_before_an_encoder_refusal_are_removed(tmp_path: Path) -> None:
    settings = ImageSettings(output_dir=tmp_path / "out")
    operations = [
        {"op": "resize", "width": 100},
        {"op": "resize", "width": 20_000},
        {"op": "convert", "format": "webp"},
    ]

    with pytest.raises(NonRetryableError, match="cannot encode a 20000x200 image as WEBP"):
        await render(settings, encoded(picture(1000, 10)), operations)
    assert files_in(settings.output_dir) == []


# --- time -----------------------------------------------------------------------------------------


def clock_of_outputs(folder: Path) -> Callable[[], float]:
    """A clock that reads one second per output written: time passes as the job makes progress."""
    return lambda: float(len(list(folder.glob("*.png"))) if folder.exists() else 0)


async def test_a_job_past_its_deadline_stops_before_the_next_operation_and_removes_its_outputs(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    settings = ImageSettings(
        output_dir=out, limits=ImageLimits(job_timeout_seconds=1.5), clock=clock_of_outputs(out)
    )
    operations = [
        {"op": "resize", "width": 400},
        "thumbnail",
        "grayscale",
        {"op": "convert", "format": "png"},
    ]

    with pytest.raises(
        NonRetryableError,
        match=r"^operations\[2\] \(grayscale\): not run: the job took longer than .*1\.5 s.*"
        r"\(image_job_timeout_seconds\)",
    ):
        await render(settings, encoded(picture(800, 600)), operations)
    assert files_in(out) == []


async def test_a_job_past_its_deadline_on_the_real_clock_fails_without_outputs(tmp_path: Path) -> None:
    settings = budget(tmp_path, job_timeout_seconds=1e-6)

    with pytest.raises(NonRetryableError, match=r"\(image_job_timeout_seconds\)"):
        await render(settings, encoded(picture(64, 48)), ["thumbnail", "grayscale"])
    assert files_in(settings.output_dir) == []


async def test_a_job_cancelled_midway_removes_the_outputs_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    wrote_one, resume = threading.Event(), threading.Event()

    def clock() -> float:  # read by the render thread at each checkpoint: it holds the job there
        if out.exists() and list(out.glob("*.png")):
            wrote_one.set()
            resume.wait(WAIT_S)
        return 0.0

    settings = ImageSettings(output_dir=out, clock=clock)
    job = asyncio.create_task(render(settings, encoded(picture()), [{"op": "resize", "width": 400}] * 3))
    assert await asyncio.to_thread(wrote_one.wait, WAIT_S)
    assert len(files_in(out)) == 1

    job.cancel()
    resume.set()
    with pytest.raises(asyncio.CancelledError):
        await job
    for _ in range(int(WAIT_S / 0.01)):  # the render thread deletes them at its next checkpoint
        if not files_in(out):
            break
        await asyncio.sleep(0.01)
    assert files_in(out) == []


# --- configuration --------------------------------------------------------------------------------


def test_the_limits_come_from_jobq_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_IMAGE_MAX_OPERATIONS", "5")
    monkeypatch.setenv("JOBQ_IMAGE_MAX_OUTPUT_PIXELS", "1000")
    monkeypatch.setenv("JOBQ_IMAGE_MAX_TOTAL_OUTPUT_PIXELS", "3000")
    monkeypatch.setenv("JOBQ_IMAGE_MAX_OUTPUT_BYTES", "4096")
    monkeypatch.setenv("JOBQ_IMAGE_JOB_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("JOBQ_EMAIL_PARSE_TIMEOUT_SECONDS", "0.5")

    settings = WorkerSettings()

    assert settings.image_settings().limits == ImageLimits(
        max_operations=5,
        max_output_pixels=1000,
        max_total_output_pixels=3000,
        max_output_bytes=4096,
        job_timeout_seconds=2.5,
    )
    assert settings.email_settings().parse_timeout_seconds == 0.5


def test_the_default_limits_bound_a_job() -> None:
    assert ImageLimits() == ImageLimits(
        max_operations=20,
        max_output_pixels=50_000_000,
        max_total_output_pixels=100_000_000,
        max_output_bytes=100 * 1024 * 1024,
        job_timeout_seconds=60.0,
    )
    assert WorkerSettings().image_settings().limits == ImageLimits()
