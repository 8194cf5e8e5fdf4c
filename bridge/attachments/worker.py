"""The reader process: one file's bytes on stdin, one JSON line on stdout. Run by :mod:`.reading`.

A separate process so that a hostile file can be killed (a thread cannot be), and so its memory is
bounded on its own (``MEMORY_BYTES``): a PDF that loops forever or a bomb that asks for gigabytes
ends this process, never the bridge's. Each reader has its own bound besides: pages, unpacked
bytes, pixels, characters.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import warnings
import zipfile
from typing import Any

MEMORY_BYTES = 1536 * 1024 * 1024   # address space of this process: a bomb hits this, not the host
MAX_PAGES = 2000                   # PDF pages read at most (the text stops earlier for long files)
MAX_UNPACKED = 200 * 1024 * 1024   # DOCX: what the zip may unpack to in total
MAX_RATIO = 200                    # DOCX: how much one member may expand (zip bombs expand ~1000x)
MAX_PIXELS = 50_000_000            # images: larger is a decompression bomb (Pillow's own default: 89M)
MAX_SIDE = 1536                    # images are kept at most this wide and high (vision models' limits)
JPEG_QUALITY = 85
MAX_IMAGE_BYTES = 1_000_000         # an image as kept and sent: a noisy screenshot is re-encoded smaller


class Bomb(Exception):
    pass


class NoText(Exception):
    pass


def _limit_memory() -> None:
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass  # not on this system: the time limit still holds


def read_text(data: bytes, max_chars: int) -> str:
    data = data[: max_chars * 4]
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")[:max_chars]
    try:
        return data.decode("utf-8")[:max_chars]
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut at the byte bound
            return data[: exc.start].decode("utf-8")[:max_chars]
    import charset_normalizer
    best = charset_normalizer.from_bytes(data).best()
    text = str(best) if best is not None else data.decode("cp1252", errors="replace")
    return text[:max_chars]


def read_pdf(data: bytes, max_chars: int) -> str:
    import pypdf
    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as exc:
            raise NoText from exc
    parts: list[str] = []
    used = 0
    for number, page in enumerate(reader.pages, start=1):
        if number > MAX_PAGES or used > max_chars:
            break
        text = page.extract_text() or ""
        parts.append(f"[page {number}]\n{text.strip()}")
        used += len(text)
    text = "\n\n".join(parts)
    if not any(p.split("\n", 1)[-1].strip() for p in parts):
        raise NoText
    return text[:max_chars]


def read_docx(data: bytes, max_chars: int) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        total = 0
        for info in archive.infolist():
            total += info.file_size
            if total > MAX_UNPACKED or info.file_size > MAX_RATIO * max(info.compress_size, 1) + 1_000_000:
                raise Bomb
    import docx
    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    used = 0
    for paragraph in document.paragraphs:
        lines.append(paragraph.text)
        used += len(paragraph.text)
        if used > max_chars:
            break
    for table in document.tables:
        if used > max_chars:
            break
        for row in table.rows:
            line = " | ".join(cell.text for cell in row.cells)
            lines.append(line)
            used += len(line)
    text = "\n".join(lines).strip()
    if not text:
        raise NoText
    return text[:max_chars]


def read_image(data: bytes) -> dict[str, Any]:
    from PIL import Image, ImageOps
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise Bomb
            opened.seek(0)
            opened.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced size directly
            opened.load()
            opened.thumbnail((MAX_SIDE, MAX_SIDE))
            img = ImageOps.exif_transpose(opened)  # a phone photo of a contract, the right way up
            out = io.BytesIO()
            mime = "image/png"
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                img.save(out, "PNG", optimize=True)
                if out.tell() > MAX_IMAGE_BYTES:  # flatten on white: JPEG is far smaller for photos
                    flat = Image.new("RGB", img.size, (255, 255, 255))
                    flat.paste(img, mask=img.getchannel("A"))
                    img = flat
            if img.mode != "RGBA" or out.tell() > MAX_IMAGE_BYTES:
                img, out, mime = img.convert("RGB"), _jpeg(img.convert("RGB")), "image/jpeg"
                while out.tell() > MAX_IMAGE_BYTES and min(img.size) > 64:
                    img = img.resize((img.width * 3 // 4, img.height * 3 // 4))
                    out = _jpeg(img)
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Bomb from None
    return {"image": f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode()}",
            "width": width, "height": height}


def _jpeg(img: Any) -> io.BytesIO:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=JPEG_QUALITY)
    return out


def main(argv: list[str]) -> int:
    kind, max_chars = argv[0], int(argv[1])
    _limit_memory()
    data = sys.stdin.buffer.read()
    result: dict[str, Any]
    try:
        if kind == "image":
            result = read_image(data)
        elif kind == "pdf":
            result = {"text": read_pdf(data, max_chars)}
        elif kind == "docx":
            result = {"text": read_docx(data, max_chars)}
        else:
            result = {"text": read_text(data, max_chars)}
    except Bomb:
        result = {"problem": "bomb"}
    except NoText:
        result = {"problem": "no_text"}
    except MemoryError:
        result = {"problem": "bomb"}
    except Exception as exc:  # whatever a damaged file makes a parser raise
        result = {"problem": "damaged", "why": type(exc).__name__}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
