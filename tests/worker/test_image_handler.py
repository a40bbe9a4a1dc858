"""The image handler on real images, served by a real HTTP server on 127.0.0.1 or read from disk.

Tests that fetch from the local server set ``allow_private_networks``; the SSRF tests leave it off
and forbid every socket connection, so a refusal must come before any traffic.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from jobqueue.addresses import is_public_address
from jobqueue.errors import NonRetryableError
from jobqueue_worker.handlers.image import ImageSettings, TransientImageError, process_image
from jobqueue_worker.handlers.image_fetch import FetchPolicy, fetch_url

from .conftest import HttpServer

JOB = "images:01JABCDEF0123456789"
STEM = "images_01JABCDEF0123456789"
ORIENTATION = 0x0112


def encoded(image: Image.Image, image_format: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def picture(width: int = 800, height: int = 600, mode: str = "RGB") -> Image.Image:
    """A gradient, so resampling and watermarks have detail to change."""
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.merge(
        "RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90).resize((width, height)), gradient)
    ).convert(mode)


def opened(output: dict[str, Any]) -> Image.Image:
    path = Path(output["path"])
    assert path.stat().st_size == output["bytes"]
    image = Image.open(io.BytesIO(path.read_bytes()))  # in memory: no file handle left open
    assert image.size == (output["width"], output["height"])
    return image


def files_in(folder: Path) -> list[Path]:
    return list(folder.iterdir())


@pytest.fixture
def settings(tmp_path: Path) -> ImageSettings:
    return ImageSettings(
        output_dir=tmp_path / "out", allowed_input_dirs=(tmp_path / "in",), allow_private_networks=True
    )


async def run(settings: ImageSettings, **payload: Any) -> list[dict[str, Any]]:
    result = await process_image(payload, settings, job_id=JOB)
    outputs: list[dict[str, Any]] = result["outputs"]
    return outputs


# --- operations ---------------------------------------------------------------------------------


async def test_resize_then_thumbnail_writes_one_file_per_step(
    http_server: HttpServer, settings: ImageSettings
) -> None:
    url = http_server.add("/photo.png", encoded(picture(800, 600)))

    outputs = await run(settings, imageUrl=url, operations=[{"op": "resize", "width": 400}, "thumbnail"])

    assert [Path(o["path"]).name for o in outputs] == [f"{STEM}-1-resize.png", f"{STEM}-2-thumbnail.png"]
    assert [(o["width"], o["height"], o["format"]) for o in outputs] == [(400, 300, "png"), (256, 192, "png")]
    assert all(Path(o["path"]).parent == settings.output_dir for o in outputs)
    assert [opened(o).format for o in outputs] == ["PNG", "PNG"]


@pytest.mark.parametrize(
    ("operation", "size"),
    [
        ({"op": "resize", "height": 300}, (400, 300)),
        ({"op": "resize", "width": 1600}, (1600, 1200)),
        ({"op": "resize", "width": 200, "height": 200}, (200, 150)),
        ({"op": "resize", "width": 200, "height": 200, "keep_aspect": False}, (200, 200)),
        ({"op": "resize", "width": 100, "keep_aspect": False}, (100, 600)),
        ({"op": "thumbnail", "size": [100, 50]}, (67, 50)),
        ({"op": "thumbnail", "size": 1000}, (800, 600)),
        ({"op": "thumbnail", "width": 80}, (80, 60)),
    ],
)
async def test_resize_and_thumbnail_give_the_expected_size(
    operation: dict[str, Any], size: tuple[int, int], settings: ImageSettings
) -> None:
    result = await process_image(
        {"operations": [operation]}, settings, job_id=JOB, payload_bytes=encoded(picture())
    )

    (output,) = result["outputs"]
    assert opened(output).size == size


async def test_exif_orientation_is_applied_before_the_operations(settings: ImageSettings) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown rotated a quarter turn: portrait
    photo = encoded(picture(400, 200), "JPEG", exif=exif)

    result = await process_image({"operations": ["thumbnail"]}, settings, job_id=JOB, payload_bytes=photo)

    (output,) = result["outputs"]
    image = opened(output)
    assert image.size == (128, 256)
    assert image.format == "JPEG"
    assert ORIENTATION not in image.getexif()


async def test_grayscale_output_has_a_single_channel(settings: ImageSettings) -> None:
    result = await process_image(
        {"operations": ["grayscale"]}, settings, job_id=JOB, payload_bytes=encoded(picture())
    )

    (output,) = result["outputs"]
    assert Path(output["path"]).name == f"{STEM}-1-grayscale.png"
    assert opened(output).mode == "L"


async def test_watermark_changes_pixels_only_near_its_position(settings: ImageSettings) -> None:
    original = Image.new("RGB", (400, 300), (40, 90, 160))
    payload = {
        "operations": [{"op": "watermark", "text": "(c) Jobs", "position": "bottom-right", "opacity": 0.8}]
    }

    result = await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(original))

    marked = opened(result["outputs"][0]).convert("RGB")
    changed = ImageChops.difference(original, marked).getbbox()
    assert changed is not None
    assert changed[0] > 200 and changed[1] > 150  # all of it in the bottom-right quarter


async def test_a_zero_opacity_watermark_leaves_the_image_alone(settings: ImageSettings) -> None:
    original = Image.new("RGB", (200, 100), (40, 90, 160))
    payload = {"operations": [{"op": "watermark", "text": "hidden", "opacity": 0}]}

    result = await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(original))

    assert ImageChops.difference(original, opened(result["outputs"][0]).convert("RGB")).getbbox() is None


@pytest.mark.parametrize(
    ("requested", "pillow_format", "extension"), [("webp", "WEBP", "webp"), ("jpeg", "JPEG", "jpg")]
)
async def test_convert_writes_the_format_at_the_requested_quality(
    requested: str, pillow_format: str, extension: str, settings: ImageSettings
) -> None:
    noisy = encoded(Image.effect_noise((256, 256), 64).convert("RGB"))
    operations = [
        {"op": "convert", "format": requested, "quality": 10},
        {"op": "convert", "format": requested, "quality": 95},
    ]

    result = await process_image({"operations": operations}, settings, job_id=JOB, payload_bytes=noisy)

    low, high = result["outputs"]
    assert Path(low["path"]).name == f"{STEM}-1-convert.{extension}"
    assert (low["format"], opened(low).format, opened(high).format) == (
        requested,
        pillow_format,
        pillow_format,
    )
    assert low["bytes"] < high["bytes"]


async def test_transparency_is_flattened_onto_white_for_jpeg(settings: ImageSettings) -> None:
    clear = Image.new("RGBA", (50, 50), (255, 0, 0, 0))
    payload = {"operations": [{"op": "convert", "format": "jpg"}]}

    result = await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(clear))

    pixel = opened(result["outputs"][0]).convert("RGB").getpixel((25, 25))
    assert isinstance(pixel, tuple) and min(pixel) > 245


async def test_a_format_after_convert_applies_to_later_outputs(settings: ImageSettings) -> None:
    payload = {
        "operations": [{"op": "convert", "format": "webp"}, "grayscale", {"op": "resize", "width": 40}]
    }

    result = await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(picture()))

    assert [o["format"] for o in result["outputs"]] == ["webp", "webp"]
    assert [Path(o["path"]).name for o in result["outputs"]] == [
        f"{STEM}-1-convert.webp",
        f"{STEM}-3-resize.webp",
    ]


async def test_no_operations_writes_the_image_once(settings: ImageSettings) -> None:
    result = await process_image({}, settings, job_id=JOB, payload_bytes=encoded(picture(30, 20), "GIF"))

    (output,) = result["outputs"]
    assert Path(output["path"]).name == f"{STEM}-0-original.gif"
    assert opened(output).format == "GIF"


async def test_odd_characters_in_the_job_id_never_leave_the_output_folder(settings: ImageSettings) -> None:
    result = await process_image({}, settings, job_id="../../etc/x y", payload_bytes=encoded(picture(10, 10)))

    path = Path(result["outputs"][0]["path"])
    assert path.parent == settings.output_dir
    assert path.name == "_.._etc_x_y-0-original.png"


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        (["blur"], r"operations\[0\]: unknown operation 'blur'"),
        (["resize"], r"operations\[0\] \(resize\): needs width or height"),
        ([{"op": "resize", "width": 0}], "width must be a whole number"),
        ([{"op": "resize", "width": "big"}], "width must be a whole number"),
        ([{"op": "resize", "width": 10, "widht": 20}], "unknown parameter.*widht"),
        (["thumbnail", {"op": "convert"}], r"operations\[1\] \(convert\): format must be one of"),
        ([{"op": "convert", "format": "png", "quality": 50}], "quality applies only to jpeg and webp"),
        ([{"op": "watermark"}], "needs text"),
        ([{"op": "watermark", "text": "x", "opacity": 2}], "opacity must be"),
        ([{"op": "watermark", "text": "x", "position": "middle"}], "position must be one of"),
        ([{"size": 3}], r"operations\[0\] must be an operation name"),
        ("thumbnail", "operations must be a list"),
    ],
)
async def test_bad_operations_are_refused_before_downloading(
    operations: Any, message: str, http_server: HttpServer, settings: ImageSettings
) -> None:
    url = http_server.add("/photo.png", encoded(picture()))

    with pytest.raises(NonRetryableError, match=message):
        await run(settings, imageUrl=url, operations=operations)
    assert http_server.requests == []


async def test_a_size_the_output_format_cannot_hold_is_refused(settings: ImageSettings) -> None:
    payload = {"operations": [{"op": "resize", "width": 20_000}, {"op": "convert", "format": "webp"}]}

    with pytest.raises(NonRetryableError, match="cannot encode a 20000x200 image as WEBP"):
        await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(picture(1000, 10)))


async def test_a_resize_past_the_pixel_limit_is_refused(settings: ImageSettings) -> None:
    payload = {"operations": [{"op": "resize", "width": 60_000}]}

    with pytest.raises(NonRetryableError, match="pixel limit"):
        await process_image(payload, settings, job_id=JOB, payload_bytes=encoded(picture(100, 100)))


# --- bad images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not an image at all", "not a supported image"),
        (encoded(picture(), "JPEG")[:2000], "corrupt or truncated"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a supported image"),
    ],
    ids=["garbage", "truncated-jpeg", "eps"],
)
async def test_a_corrupt_or_unsupported_image_is_not_retryable(
    data: bytes, message: str, settings: ImageSettings
) -> None:
    with pytest.raises(NonRetryableError, match=message):
        await process_image({"operations": ["thumbnail"]}, settings, job_id=JOB, payload_bytes=data)


@pytest.mark.parametrize(
    ("width", "height"), [(120, 100), (400, 400)], ids=["over-limit", "over-twice-limit"]
)
async def test_a_decompression_bomb_is_not_retryable(width: int, height: int, tmp_path: Path) -> None:
    settings = ImageSettings(output_dir=tmp_path, max_pixels=10_000)
    bomb = encoded(Image.new("L", (width, height)))

    with pytest.raises(NonRetryableError, match="more than 10000 pixels"):
        await process_image({}, settings, job_id=JOB, payload_bytes=bomb)
    assert files_in(tmp_path) == []


async def test_a_job_without_an_image_is_not_retryable(settings: ImageSettings) -> None:
    with pytest.raises(NonRetryableError, match="imageUrl is required"):
        await process_image({"operations": ["thumbnail"]}, settings, job_id=JOB)


# --- local files --------------------------------------------------------------------------------


def input_file(settings: ImageSettings, name: str = "photo.png") -> Path:
    folder = settings.allowed_input_dirs[0]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(encoded(picture(64, 48)))
    return path


async def test_a_path_inside_an_allowed_folder_is_read(settings: ImageSettings) -> None:
    outputs = await run(settings, imageUrl=str(input_file(settings)), operations=["grayscale"])

    assert opened(outputs[0]).size == (64, 48)


async def test_a_dotdot_path_escaping_the_allowed_folder_is_refused(
    settings: ImageSettings, tmp_path: Path
) -> None:
    (tmp_path / "secret.png").write_bytes(encoded(picture(8, 8)))
    input_file(settings)
    escaping = f"{settings.allowed_input_dirs[0]}/../secret.png"

    with pytest.raises(NonRetryableError, match="outside the allowed input folders"):
        await run(settings, imageUrl=escaping)


async def test_a_symlink_pointing_out_of_the_allowed_folder_is_refused(
    settings: ImageSettings, tmp_path: Path
) -> None:
    (tmp_path / "secret.png").write_bytes(encoded(picture(8, 8)))
    link = input_file(settings).with_name("link.png")
    link.symlink_to(tmp_path / "secret.png")

    with pytest.raises(NonRetryableError, match="outside the allowed input folders"):
        await run(settings, imageUrl=str(link))


async def test_a_relative_path_is_refused(settings: ImageSettings) -> None:
    with pytest.raises(NonRetryableError, match="neither an http"):
        await run(settings, imageUrl="in/photo.png")


async def test_paths_are_refused_when_no_folder_is_allowed(settings: ImageSettings, tmp_path: Path) -> None:
    path = input_file(settings)
    closed = ImageSettings(output_dir=tmp_path / "out")

    with pytest.raises(NonRetryableError, match="outside the allowed input folders"):
        await run(closed, imageUrl=str(path))


async def test_a_file_over_the_size_limit_is_refused(settings: ImageSettings, tmp_path: Path) -> None:
    small = ImageSettings(
        output_dir=tmp_path, allowed_input_dirs=settings.allowed_input_dirs, max_download_bytes=100
    )

    with pytest.raises(NonRetryableError, match="larger than the 100-byte limit"):
        await run(small, imageUrl=str(input_file(settings)))


# --- downloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_server_errors_throttling_and_request_timeouts_are_retryable(
    status: int, http_server: HttpServer, settings: ImageSettings
) -> None:
    url = http_server.add("/photo.png", b"busy", status=status)

    with pytest.raises(TransientImageError, match=str(status)):
        await run(settings, imageUrl=url)


@pytest.mark.parametrize("status", [404, 403, 410])
async def test_other_client_errors_are_not_retryable(
    status: int, http_server: HttpServer, settings: ImageSettings
) -> None:
    url = http_server.add("/photo.png", b"no", status=status)

    with pytest.raises(NonRetryableError, match=str(status)):
        await run(settings, imageUrl=url)


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
async def test_a_download_over_the_size_limit_is_not_retryable(
    send_length: bool, http_server: HttpServer, tmp_path: Path
) -> None:
    url = http_server.add("/huge.png", b"\0" * 5000, send_length=send_length)
    settings = ImageSettings(output_dir=tmp_path, max_download_bytes=1000, allow_private_networks=True)

    with pytest.raises(NonRetryableError, match="larger than the 1000-byte limit"):
        await run(settings, imageUrl=url)


async def test_redirects_are_followed_up_to_three_hops(
    http_server: HttpServer, settings: ImageSettings
) -> None:
    http_server.add("/photo.png", encoded(picture(10, 10)))
    for hop in range(4):
        target = "/photo.png" if hop == 3 else f"/hop{hop + 1}"
        http_server.add(f"/hop{hop}", status=302, headers={"Location": target})

    outputs = await run(settings, imageUrl=http_server.url("/hop1"))
    assert opened(outputs[0]).size == (10, 10)

    with pytest.raises(NonRetryableError, match="more than 3 redirects"):
        await run(settings, imageUrl=http_server.url("/hop0"))


async def test_a_download_by_name_goes_to_the_vetted_address_with_the_name_as_host(
    http_server: HttpServer, settings: ImageSettings
) -> None:
    http_server.add("/photo.png", encoded(picture(10, 10)))
    port = http_server.base_url.rsplit(":", 1)[1]

    await run(settings, imageUrl=f"http://localhost:{port}/photo.png")

    assert http_server.requests == [("/photo.png", f"localhost:{port}")]


async def test_https_to_the_vetted_address_still_verifies_the_host_name(
    https_server: HttpServer, ca_file: Path, tmp_path: Path
) -> None:
    url = https_server.add("/photo.png", encoded(picture(10, 10)))
    trusted = ImageSettings(output_dir=tmp_path, allow_private_networks=True, cafile=ca_file)

    outputs = await run(trusted, imageUrl=url)

    assert opened(outputs[0]).size == (10, 10)
    with pytest.raises(TransientImageError):  # the same server, the test CA not trusted
        await run(ImageSettings(output_dir=tmp_path, allow_private_networks=True), imageUrl=url)


async def test_a_refused_connection_is_retryable(refused_port: int, settings: ImageSettings) -> None:
    with pytest.raises(TransientImageError):
        await run(settings, imageUrl=f"http://127.0.0.1:{refused_port}/photo.png")


async def test_a_server_that_never_answers_times_out_as_retryable(tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    settings = ImageSettings(output_dir=tmp_path, allow_private_networks=True, download_timeout_seconds=0.2)
    async with await asyncio.start_server(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(TransientImageError):
            await run(settings, imageUrl=f"http://127.0.0.1:{port}/photo.png")


# --- SSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/photo.png",
        "http://10.0.0.1/photo.png",
        "http://[::1]/photo.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/photo.png",
        "http://[::ffff:127.0.0.1]/photo.png",
        "http://0.0.0.0/photo.png",
        "http://2130706433/photo.png",
        "https://192.168.1.1/photo.png",
    ],
)
async def test_non_public_addresses_are_refused_before_connecting(
    url: str, no_connections: list[object], tmp_path: Path
) -> None:
    settings = ImageSettings(output_dir=tmp_path)

    with pytest.raises(NonRetryableError, match="is not a public address"):
        await run(settings, imageUrl=url)
    assert no_connections == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("ftp://example.com/photo.png", "scheme 'ftp' is not allowed"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed"),
        ("data:image/png;base64,iVBORw0KGgo=", "scheme 'data' is not allowed"),
        ("http://user:pass@example.com/photo.png", "credentials in the URL"),
    ],
)
async def test_other_schemes_and_credentials_are_refused(
    url: str, message: str, no_connections: list[object], tmp_path: Path
) -> None:
    with pytest.raises(NonRetryableError, match=message):
        await run(ImageSettings(output_dir=tmp_path), imageUrl=url)


async def test_a_redirect_to_a_non_public_address_is_refused(no_connections: list[object]) -> None:
    seen: list[httpx.URL] = []

    def public_site(request: httpx.Request) -> httpx.Response:  # stands in for a public server
        seen.append(request.url)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    policy = FetchPolicy(max_bytes=1000, timeout_seconds=5)
    with pytest.raises(NonRetryableError, match=r"169\.254\.169\.254 is not a public address"):
        await fetch_url("http://93.184.215.14/photo.png", policy, transport=httpx.MockTransport(public_site))
    assert [str(url) for url in seen] == ["http://93.184.215.14/photo.png"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("172.16.0.1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fec0::1", False),  # site-local (issue 12's probe found it counted as public)
        ("feff:ffff::1", False),
        ("::", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 wrapping 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo wrapping 10.0.0.1
        ("2002:5db8:d70e::", True),  # 6to4 wrapping a public address
    ],
)
def test_is_public_address_looks_through_ipv6_wrappings(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public
