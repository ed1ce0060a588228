"""The customer e-mail check: strict and simple, the domain lower-cased, the address never
repeated in a refusal; and its masked form."""

from __future__ import annotations

import pytest

from pos_loyalty.customers.emails import mask_email, normalise_email
from pos_loyalty.errors import InvalidInput


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("ivan@example.ru", "ivan@example.ru"),
        (" Ivan.P@Example.RU ", "Ivan.P@example.ru"),
        ("a+tag@mail.example.co.uk", "a+tag@mail.example.co.uk"),
        ("zakaz@магазин.рф", "zakaz@магазин.рф"),
    ],
)
def test_good_addresses_are_kept_with_the_domain_lower_cased(typed: str, kept: str) -> None:
    assert normalise_email(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "ivan",
        "ivan@",
        "@example.ru",
        "ivan@example",
        "ivan@@example.ru",
        "iv an@example.ru",
        "ivan@exa mple.ru",
        "ivan\x00@example.ru",
        "ivan@example..ru",
        "ivan@-example.ru",
        ".ivan@example.ru",
        "iv..an@example.ru",
        '"ivan"@example.ru',
        "ivan@exa_mple.ru",
        "i" * 65 + "@example.ru",
        "ivan@" + "a" * 250 + ".ru",
    ],
)
def test_bad_addresses_are_refused_naming_the_field(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_email(typed)
    assert refused.value.code == "email_invalid"
    assert refused.value.details == {"field": "email"}
    assert "ivan" not in refused.value.message


def test_masked_like_the_phone() -> None:
    assert mask_email("ivan@example.ru") == "i***@example.ru"
