"""The text of an uploaded file: UTF-8, not binary, with messages that say how to fix it."""

from __future__ import annotations

__all__ = ["decode_upload"]


def decode_upload(raw: bytes, name: str, *, binary_hint: str, utf8_hint: str) -> str:
    """The text of an uploaded file: refuses UTF-16/32 text (by its byte-order mark),
    binary content (a NUL byte in the first 64 KiB) and bytes that are not UTF-8 (a
    UTF-8 BOM is dropped).

    Args:
        raw: The file's bytes.
        name: The file's name, as the messages show it.
        binary_hint: Completes ``"<name> is a binary file, "`` (what was expected).
        utf8_hint: Completes ``"<name> is not UTF-8 text"`` (how to fix it).

    Raises:
        ValueError: Binary content or not UTF-8.
    """
    for bom, enc in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                     (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            raise ValueError(f"{name} is not UTF-8 text (it is {enc}){utf8_hint}")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{name} is a binary file, {binary_hint}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text{utf8_hint}") from None
