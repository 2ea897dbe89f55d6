"""Registries (duplicates, did-you-mean) and text validation."""

from __future__ import annotations

import pytest

from embedsuite.errors import UnknownNameError
from embedsuite.registry import Registry
from embedsuite.validation import as_text_list, check_text


def test_registry_rejects_duplicates_and_suggests() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)
    reg.register("beta")(2)  # type: ignore[operator]
    assert reg.get("alpha") == 1 and reg.names() == ["alpha", "beta"]
    with pytest.raises(ValueError, match="widget 'alpha' is already registered"):
        reg.register("alpha", 3)
    with pytest.raises(UnknownNameError) as exc:
        reg.get("alpah")
    assert str(exc.value) == (
        "Unknown widget 'alpah'. Did you mean 'alpha'? Known widgets: alpha, beta."
    )
    with pytest.raises(UnknownNameError, match="Known widgets: alpha, beta"):
        reg.get("zzz")
    assert "Did you mean" not in reg.unknown_message("zzz")


def test_registry_rejects_bad_names() -> None:
    reg: Registry[int] = Registry("widget")
    with pytest.raises(ValueError, match="non-empty strings"):
        reg.register("  ", 1)


def test_encoder_registry_did_you_mean() -> None:
    from embedsuite.encoders import get_encoder

    with pytest.raises(UnknownNameError, match=r"Unknown encoder 'e5-smal'\. Did you mean "
                                               r"'e5-small' or 'e5-small-int8'\?"):
        get_encoder("e5-smal")


def test_as_text_list_str_and_list() -> None:
    assert as_text_list("hi") == (["hi"], True)
    assert as_text_list(["a", "b"]) == (["a", "b"], False)
    assert as_text_list(("a",)) == (["a"], False)
    assert as_text_list([]) == ([], False)


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (["ok", 3], TypeError, r"texts\[1\] must be a str, got int"),
        (["ok", None], TypeError, r"texts\[1\] must be a str, got NoneType"),
        (["ok", "  "], ValueError, r"texts\[1\] is empty or whitespace only"),
        ("", ValueError, r"texts is empty or whitespace only"),
        (None, TypeError, r"texts must be a str or a list of str, got NoneType"),
        (b"bytes", TypeError, r"texts must be a str or a list of str, got bytes"),
        (12, TypeError, r"texts must be a str or a list of str, got int"),
    ],
)
def test_as_text_list_errors_name_the_position(value: object, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        as_text_list(value)


def test_check_text_allows_empty_when_asked() -> None:
    assert check_text("", allow_empty=True) == ""
