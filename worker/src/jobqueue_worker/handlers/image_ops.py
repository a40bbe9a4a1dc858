"""Image operations: parse a payload's ``operations`` list, then apply it with Pillow.

Parsing is strict (unknown operations or parameters and out-of-range values raise
NonRetryableError naming ``operations[i]`` and the parameter) and happens before any download.
Applying is CPU work: ``process_image`` runs it in a thread. The operations' meaning is described
in ``jobqueue_worker.handlers.image``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image, ImageDraw, ImageFont

from jobqueue.errors import NonRetryableError

#: Payload spelling -> Pillow format name.
OUTPUT_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_QUALITY_FORMATS = frozenset({"JPEG", "WEBP"})
#: Where a watermark goes, as fractions of the free space left and above it.
_POSITIONS = {
    "top-left": (0.0, 0.0),
    "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
    "center": (0.5, 0.5),
}
DEFAULT_THUMBNAIL_BOX = 256
MAX_SIDE = 65_535  # the largest side JPEG and WebP can store
MAX_WATERMARK_CHARS = 200


@dataclass(frozen=True, slots=True)
class Resize:
    name: ClassVar[str] = "resize"
    emits: ClassVar[bool] = True
    width: int | None
    height: int | None
    keep_aspect: bool = True

    def apply(self, image: Image.Image, max_pixels: int) -> Image.Image:
        size = self.target_size(image.size)
        if size[0] * size[1] > max_pixels:
            raise NonRetryableError(f"resize to {size[0]}x{size[1]} exceeds the {max_pixels}-pixel limit")
        return image.resize(size, Image.Resampling.LANCZOS)

    def target_size(self, size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        if not self.keep_aspect:
            return self.width or width, self.height or height
        scales = [want / have for want, have in ((self.width, width), (self.height, height)) if want]
        scale = min(scales)  # with both given, fit inside the box
        return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True, slots=True)
class Thumbnail:
    name: ClassVar[str] = "thumbnail"
    emits: ClassVar[bool] = True
    width: int | None
    height: int | None

    def apply(self, image: Image.Image, max_pixels: int) -> Image.Image:
        image.thumbnail((self.width or image.width, self.height or image.height), Image.Resampling.LANCZOS)
        return image


@dataclass(frozen=True, slots=True)
class Watermark:
    name: ClassVar[str] = "watermark"
    emits: ClassVar[bool] = False
    text: str
    position: str = "bottom-right"
    opacity: float = 0.5

    def apply(self, image: Image.Image, max_pixels: int) -> Image.Image:
        base = image.convert("RGBA")
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        font_size = max(10, min(base.size) // 12)
        font = ImageFont.load_default(size=font_size)
        stroke = max(1, font_size // 15)
        left, top, right, bottom = draw.textbbox((0, 0), self.text, font=font, stroke_width=stroke)
        x, y = _place(base.size, (right - left, bottom - top), _POSITIONS[self.position])
        alpha = round(255 * self.opacity)
        draw.text(
            (x - left, y - top),
            self.text,
            font=font,
            fill=(255, 255, 255, alpha),
            stroke_width=stroke,
            stroke_fill=(0, 0, 0, alpha),
        )
        marked = Image.alpha_composite(base, layer)
        return marked if image.mode == "RGBA" else marked.convert(image.mode)


@dataclass(frozen=True, slots=True)
class Convert:
    name: ClassVar[str] = "convert"
    emits: ClassVar[bool] = True
    format: str
    quality: int | None = None

    def apply(self, image: Image.Image, max_pixels: int) -> Image.Image:
        return image  # the format takes effect when the image is encoded


@dataclass(frozen=True, slots=True)
class Grayscale:
    name: ClassVar[str] = "grayscale"
    emits: ClassVar[bool] = False

    def apply(self, image: Image.Image, max_pixels: int) -> Image.Image:
        return image.convert("LA" if image.mode in ("RGBA", "LA") else "L")


Operation = Resize | Thumbnail | Watermark | Convert | Grayscale


@dataclass(frozen=True, slots=True)
class Step:
    """The image as it stands after an operation that writes an output file."""

    label: str
    #: The payload field the step comes from, for error messages: ``operations[2] (resize)``.
    where: str
    image: Image.Image
    format: str
    quality: int | None


#: Called before each operation with its payload field, the operation and the image it gets.
BeforeOperation = Callable[[str, Operation, Image.Image], None]


def run_pipeline(
    image: Image.Image,
    operations: list[Operation],
    source_format: str,
    max_pixels: int,
    before: BeforeOperation | None = None,
) -> Iterator[Step]:
    """Apply ``operations`` in order, yielding each step that writes a file.

    Consume each step before asking for the next: a later operation may change the image in place.
    ``before`` may raise to stop the pipeline ahead of an operation (a budget or a deadline).
    """
    if not operations:
        yield Step("0-original", "the image (no operations)", image, source_format, None)
        return
    output_format, quality = source_format, None
    for index, operation in enumerate(operations, start=1):
        where = f"operations[{index - 1}] ({operation.name})"
        if before is not None:
            before(where, operation, image)
        image = operation.apply(image, max_pixels)
        if isinstance(operation, Convert):
            output_format, quality = operation.format, operation.quality
        if operation.emits or index == len(operations):
            yield Step(f"{index}-{operation.name}", where, image, output_format, quality)


def _place(canvas: tuple[int, int], box: tuple[float, float], where: tuple[float, float]) -> tuple[int, int]:
    margin = max(4, min(canvas) // 40)
    free_x, free_y = canvas[0] - box[0] - 2 * margin, canvas[1] - box[1] - 2 * margin
    return margin + round(free_x * where[0]), margin + round(free_y * where[1])


# --- parsing --------------------------------------------------------------------------------------


class _Params:
    """One operation's parameters: typed getters that name the bad one, and a check for extras."""

    def __init__(self, where: str, values: Mapping[str, Any]) -> None:
        self.where = where
        self._values = dict(values)
        self._read: set[str] = set()

    def error(self, message: str) -> NonRetryableError:
        return NonRetryableError(f"{self.where}: {message}")

    def raw(self, key: str) -> Any:
        self._read.add(key)
        return self._values.get(key)

    def whole(self, key: str, low: int = 1, high: int = MAX_SIDE) -> int | None:
        value = self.raw(key)
        if value is not None and not _is_whole(value, low, high):
            raise self.error(f"{key} must be a whole number from {low} to {high}, got {value!r}")
        return value  # type: ignore[no-any-return]

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"{key} must be true or false, got {value!r}")
        return default if value is None else value

    def choice(self, key: str, choices: Mapping[str, Any] | frozenset[str], default: str | None) -> str:
        value = self.raw(key)
        if value is None and default is not None:
            return default
        if value not in choices:
            raise self.error(f"{key} must be one of {', '.join(sorted(choices))}, got {value!r}")
        return str(value)

    def done(self) -> None:
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise self.error(f"unknown parameter(s) {', '.join(unknown)}")


def _is_whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_operations(raw: object) -> list[Operation]:
    """Validate the payload's ``operations`` (None means none)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise NonRetryableError("operations must be a list")
    return [_parse_one(f"operations[{index}]", item) for index, item in enumerate(raw)]


def _parse_one(where: str, item: object) -> Operation:
    if isinstance(item, str):
        name, values = item, {}
    elif isinstance(item, dict) and isinstance(item.get("op"), str):
        name, values = item["op"], {k: v for k, v in item.items() if k != "op"}
    else:
        raise NonRetryableError(f'{where} must be an operation name or an object with an "op" name')
    parser = _PARSERS.get(name)
    if parser is None:
        raise NonRetryableError(f"{where}: unknown operation {name!r} (known: {', '.join(_PARSERS)})")
    params = _Params(f"{where} ({name})", values)
    operation = parser(params)
    params.done()
    return operation


def _parse_resize(params: _Params) -> Operation:
    width, height = params.whole("width"), params.whole("height")
    keep_aspect = params.flag("keep_aspect", default=True)
    if width is None and height is None:
        raise params.error("needs width or height (pixels)")
    return Resize(width, height, keep_aspect)


def _parse_thumbnail(params: _Params) -> Operation:
    size, width, height = params.raw("size"), params.whole("width"), params.whole("height")
    if size is None:
        if width is None and height is None:
            return Thumbnail(DEFAULT_THUMBNAIL_BOX, DEFAULT_THUMBNAIL_BOX)
        return Thumbnail(width, height)
    if width is not None or height is not None:
        raise params.error("give size or width/height, not both")
    if _is_whole(size, 1, MAX_SIDE):
        return Thumbnail(size, size)
    if isinstance(size, list) and len(size) == 2 and all(_is_whole(side, 1, MAX_SIDE) for side in size):
        return Thumbnail(size[0], size[1])
    raise params.error(f"size must be a whole number or [width, height], got {size!r}")


def _parse_watermark(params: _Params) -> Operation:
    text = params.raw("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_WATERMARK_CHARS:
        raise params.error(f"needs text: a non-empty string of at most {MAX_WATERMARK_CHARS} characters")
    position = params.choice("position", _POSITIONS, default="bottom-right")
    opacity = params.raw("opacity")
    if opacity is None:
        return Watermark(text, position)
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0 <= opacity <= 1:
        raise params.error(f"opacity must be a number from 0 to 1, got {opacity!r}")
    return Watermark(text, position, float(opacity))


def _parse_convert(params: _Params) -> Operation:
    output_format = OUTPUT_FORMATS[params.choice("format", OUTPUT_FORMATS, default=None)]
    quality = params.whole("quality", low=1, high=100)
    if quality is not None and output_format not in _QUALITY_FORMATS:
        raise params.error("quality applies only to jpeg and webp")
    return Convert(output_format, quality)


def _parse_grayscale(params: _Params) -> Operation:
    return Grayscale()


_PARSERS: dict[str, Callable[[_Params], Operation]] = {
    "resize": _parse_resize,
    "thumbnail": _parse_thumbnail,
    "watermark": _parse_watermark,
    "convert": _parse_convert,
    "grayscale": _parse_grayscale,
}
