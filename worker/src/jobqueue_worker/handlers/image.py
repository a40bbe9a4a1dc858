"""Process one image: the reference worker's ``image`` job handler.

Payload (a JSON object)::

    imageUrl    str    an http(s) URL, or an absolute path inside ImageSettings.allowed_input_dirs;
                       without it, the job's raw payload bytes are the image
    operations  list   applied in order; each a name ("thumbnail") or {"op": name, ...params}

Operations (a bare name takes the defaults; a missing required parameter is an error)::

    resize     width and/or height in px. keep_aspect (default true) scales to the one given, or to
               fit inside width x height when both are; keep_aspect false stretches to them (a side
               not given stays as it is). May enlarge, up to max_pixels.
    thumbnail  size (n or [w, h]) or width/height: shrink to fit that box keeping the aspect, never
               enlarge. Default box 256 x 256.
    watermark  text (required); position top-left|top-right|bottom-left|bottom-right|center
               (default bottom-right); opacity 0..1 (default 0.5). White text with a dark outline in
               Pillow's built-in font, sized to the image.
    convert    format jpeg|jpg|png|webp|gif (required); quality 1..100 (jpeg and webp only).
    grayscale  no parameters; keeps transparency.

Semantics: the EXIF orientation is applied first, then the operations run in sequence on one image.
Each resize, thumbnail and convert writes the image as it stands after that step, and the last
operation always writes the final image: ``["resize", "watermark"]``-style lists give one file per
size or format plus the finished image, e.g. ``[{"op": "resize", "width": 1024}, "thumbnail",
{"op": "watermark", "text": "(c)"}]`` writes ``<job>-1-resize``, ``<job>-2-thumbnail`` and
``<job>-3-watermark`` (the watermarked thumbnail). With no operations the image is re-encoded once
as ``<job>-0-original``. Files go to ``output_dir`` as ``<job>-<n>-<op>.<ext>``, ``n`` being the
1-based position in ``operations`` and ``<job>`` the job id with every character outside
``[A-Za-z0-9._-]`` replaced by ``_``. The output format is the input's (JPEG, PNG, WebP, GIF; BMP
and TIFF inputs become PNG) until a convert changes it; JPEG output flattens transparency onto
white. Animated inputs give their first frame. No metadata (EXIF, GPS) is copied. Each file is
written to a temporary name and renamed, so a retry replaces earlier outputs whole.

Budget (``ImageSettings.limits``, see ``image_budget``): at most ``max_operations`` operations
(checked before the download), ``max_output_pixels`` per output and ``max_total_output_pixels``
over all of them, ``max_output_bytes`` of files in all, and ``job_timeout_seconds`` from the
handler's start. The deadline stops the job between steps, never inside one Pillow call: a job may
overrun it by one decode, resize, watermark or encode. A job that fails for any reason, or is
cancelled, deletes every output it wrote. The result has at most ``max_operations`` entries
(100 at most), each naming a path under an output folder of at most 1024 bytes: well under the
1 MiB an ack may carry.

Result::

    {"outputs": [{"path": "/out/images_01J...-1-resize.png", "format": "png",
                  "width": 1024, "height": 768, "bytes": 53120}, ...]}

Failures:

- ``NonRetryableError``: no image given; a bad ``operations`` list (unknown operation or parameter,
  bad value, a missing required parameter, more operations than ``max_operations``: checked before
  any download); an output over a pixel or byte limit; the deadline passed; a refused source (a URL
  scheme other than http/https, a non-public address, a path outside the allowed folders); HTTP 4xx
  other than 408/429; too many redirects; a download or file over ``max_download_bytes``; an input
  that is not a JPEG/PNG/WebP/GIF/BMP/TIFF image, is corrupt or truncated, or has more than
  ``max_pixels`` pixels (a decompression bomb); a result the output format cannot hold (a WebP
  side over 16383 px).
- ``TransientImageError`` (retryable, cause chained): HTTP 5xx, 408 and 429; timeouts; connection
  errors; DNS failures other than "no such host".
- Anything else, such as an OSError writing the outputs (disk full), propagates and is retried.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError

from jobqueue.errors import NonRetryableError

from .image_budget import ImageLimits, JobBudget, check_output_dir
from .image_fetch import FetchPolicy, TransientImageError, fetch_url, read_allowed_file
from .image_ops import Operation, Step, parse_operations, run_pipeline

__all__ = ["ImageLimits", "ImageSettings", "TransientImageError", "process_image"]

logger = logging.getLogger(__name__)

#: Decoders we accept: a short list keeps rarely used (and riskier) Pillow plugins out of reach.
INPUT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_KEPT_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM_CHARS = 100


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """Where images come from and go; one per worker process."""

    output_dir: Path
    #: Folders a path ``imageUrl`` may point into; empty refuses every path.
    allowed_input_dirs: tuple[Path, ...] = ()
    max_download_bytes: int = 20 * 1024 * 1024
    #: The deadline for the whole download, DNS and redirects included.
    download_timeout_seconds: float = 10.0
    #: Let URLs reach private, loopback and link-local addresses (tests, trusted networks only).
    allow_private_networks: bool = False
    max_pixels: int = 50_000_000
    #: A PEM bundle of CAs to trust for https downloads instead of the default bundle.
    cafile: Path | None = None
    #: What one job may spend.
    limits: ImageLimits = field(default_factory=ImageLimits)
    #: Seconds, read at the start of a job and at each checkpoint of its deadline (tests move it).
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_output_dir(self.output_dir)

    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(
            max_bytes=self.max_download_bytes,
            timeout_seconds=self.download_timeout_seconds,
            allow_private_networks=self.allow_private_networks,
            cafile=self.cafile,
        )


async def process_image(
    payload: Mapping[str, Any], settings: ImageSettings, *, job_id: str, payload_bytes: bytes = b""
) -> dict[str, Any]:
    """Fetch the image, apply the operations and write the outputs; see the module docstring."""
    budget = JobBudget(settings.limits, settings.clock)
    settings.limits.check_operations(payload.get("operations"))
    operations = parse_operations(payload.get("operations"))
    source = await _load_source(payload, settings, payload_bytes)
    configure_pillow(settings.max_pixels)
    try:
        outputs = await asyncio.to_thread(_render, source, operations, settings, output_stem(job_id), budget)
    except asyncio.CancelledError:
        budget.abandon()  # the thread runs on to its next checkpoint, then deletes the job's files
        raise
    logger.info("image job %s wrote %d file(s)", job_id, len(outputs))
    return {"outputs": outputs}


def configure_pillow(max_pixels: int) -> None:
    """Apply the pixel limit to Pillow, its over-limit warning raised as an error.

    Both are process-wide: Pillow reads a module global, and ``warnings.catch_warnings`` is not
    thread-safe, so the filter is installed for the process rather than around each decode.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def output_stem(job_id: str) -> str:
    """A file-name-safe form of the job id (``images:01J...`` -> ``images_01J...``)."""
    stem = _UNSAFE_FILENAME_CHARS.sub("_", job_id).lstrip(".")[:_MAX_STEM_CHARS]
    return stem or "job"


async def _load_source(payload: Mapping[str, Any], settings: ImageSettings, payload_bytes: bytes) -> bytes:
    location = payload.get("imageUrl")
    if location is None:
        if not payload_bytes:
            raise NonRetryableError("imageUrl is required (or send the image as the raw job payload)")
        if len(payload_bytes) > settings.max_download_bytes:
            raise NonRetryableError(f"the image is larger than the {settings.max_download_bytes}-byte limit")
        return payload_bytes
    if not isinstance(location, str) or not location:
        raise NonRetryableError("imageUrl must be a non-empty string")
    if urlsplit(location).scheme:  # fetch_url refuses every scheme but http and https
        return await fetch_url(location, settings.fetch_policy())
    return await asyncio.to_thread(
        read_allowed_file, location, settings.allowed_input_dirs, settings.max_download_bytes
    )


def _render(
    source: bytes, operations: list[Operation], settings: ImageSettings, stem: str, budget: JobBudget
) -> list[dict[str, Any]]:
    """In a thread: decode, run the pipeline, write the outputs; on any failure, delete them."""
    try:
        budget.check_time("the image", "not decoded")
        image, source_format = decode(source, settings.max_pixels)
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        steps = run_pipeline(image, operations, source_format, settings.max_pixels, budget.before_operation)
        outputs = [_write(settings.output_dir / f"{stem}-{step.label}", step, budget) for step in steps]
        budget.commit()
    except BaseException:
        budget.discard()
        raise
    return outputs


def decode(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Decode, check the size, turn upright; return the image and the output format to keep."""
    try:
        with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as opened:
            if opened.width * opened.height > max_pixels:  # Image.open checks too; this needs no filter
                raise NonRetryableError(f"the image has more than {max_pixels} pixels")
            source_format = opened.format or "PNG"
            image = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NonRetryableError(f"the image has more than {max_pixels} pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise NonRetryableError(f"not a supported image ({', '.join(INPUT_FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # what Pillow's decoders raise on bad data
        raise NonRetryableError(f"the image is corrupt or truncated: {exc}") from exc
    return _normalize_mode(image), source_format if source_format in _KEPT_FORMATS else "PNG"


def _normalize_mode(image: Image.Image) -> Image.Image:
    """Work in L, LA, RGB or RGBA: palette and exotic modes resize and draw poorly."""
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def encode(image: Image.Image, image_format: str, quality: int | None) -> bytes:
    if image_format == "JPEG" and image.mode not in ("L", "RGB"):
        image = _flatten(image)
    buffer = io.BytesIO()
    options = {} if quality is None else {"quality": quality}
    try:
        image.save(buffer, format=image_format, **options)
    except (OSError, ValueError) as exc:  # in memory, so the encoder refused (e.g. WebP over 16383 px)
        raise NonRetryableError(
            f"cannot encode a {image.width}x{image.height} image as {image_format}: {exc}"
        ) from exc
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _write(base: Path, step: Step, budget: JobBudget) -> dict[str, Any]:
    budget.charge_output(step.where, step.image.size)
    data = encode(step.image, step.format, step.quality)
    budget.charge_bytes(step.where, len(data))
    path = base.with_name(f"{base.name}.{_EXTENSIONS[step.format]}")
    budget.track(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return {
        "path": str(path),
        "format": step.format.lower(),
        "width": step.image.width,
        "height": step.image.height,
        "bytes": len(data),
    }
