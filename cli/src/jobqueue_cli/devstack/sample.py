"""The tutorial's two sample jobs, and a sample image so the image job works offline."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

SAMPLE_SIZE = (1024, 768)
THUMBNAIL_SIZE = 128
EMAIL_PAYLOAD: dict[str, Any] = {
    "to": "user@example.com",
    "subject": "Welcome!",
    "body": "Thanks for signing up",
}


def image_payload(image: Path) -> dict[str, Any]:
    """Resize to 800 px wide, then a thumbnail that fits in 128 x 128: two output files."""
    return {
        "imageUrl": str(image),
        "operations": [{"op": "resize", "width": 800}, {"op": "thumbnail", "size": THUMBNAIL_SIZE}],
    }


def write_sample_image(path: Path) -> Path:
    """A 1024 x 768 PNG (a gradient and a few shapes): big enough that both operations shrink it."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = SAMPLE_SIZE
    image = Image.linear_gradient("L").resize(SAMPLE_SIZE).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 8, height // 6, width // 2, height * 5 // 6), fill=(230, 90, 60))
    draw.rectangle((width // 2, height // 4, width * 7 // 8, height * 3 // 4), fill=(60, 120, 220))
    draw.text((24, 24), "jobq dev sample", fill=(255, 255, 255))
    partial = path.with_suffix(".partial")
    image.save(partial, format="PNG")
    return partial.rename(path)


def enqueue_command(queue: str, payload: dict[str, Any], target: str | None) -> str:
    """A copy-pasteable `jobq enqueue` line (shell-quoted; --target only when not the default)."""
    words = ["jobq", "enqueue", queue, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)]
    if target is not None:
        words[2:2] = ["--target", target]
    return shlex.join(words)
