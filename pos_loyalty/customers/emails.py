"""A customer's e-mail address: checked strictly and simply where it enters, masked where shown.

Not the whole of RFC 5322 (quoted local parts, comments, IP literals): one `@`, a plain local
part, a domain of dotted labels, no spaces or control characters, at most 254 characters. The
domain is lower-cased; the local part is kept as typed. Refusals never repeat the address: it is
personal data and error messages reach logs.
"""

from __future__ import annotations

from pos_loyalty.errors import InvalidInput
from pos_loyalty.plain_text import has_control_characters

MAX_EMAIL = 254  # RFC 5321's limit on a forward path, less the angle brackets
MAX_LOCAL_PART = 64
# Characters a plain (unquoted) local part may not hold besides spaces and controls.
_LOCAL_REFUSED = frozenset('"(),:;<>[\\]@')


def _refuse(reason: str) -> InvalidInput:
    return InvalidInput(
        f"email is not a valid e-mail address: {reason}",
        code="email_invalid",
        details={"field": "email"},
    )


def _domain_label_ok(label: str) -> bool:
    """`example`, `xn--80a`, `магазин`: letters, digits, inner hyphens (63 at most)."""
    return (
        0 < len(label) <= 63
        and all(ch.isalnum() or ch == "-" for ch in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def normalise_email(raw: str) -> str:
    """The address with surrounding blanks trimmed and its domain lower-cased; 422
    `email_invalid` naming the field `email` for anything else."""
    email = raw.strip()
    if not email:
        raise _refuse("it is empty")
    if len(email) > MAX_EMAIL:
        raise _refuse(f"longer than {MAX_EMAIL} characters")
    if has_control_characters(email) or any(ch.isspace() for ch in email):
        raise _refuse("it must not contain spaces or control characters")
    if email.count("@") != 1:
        raise _refuse("it needs exactly one @")
    local, domain = email.split("@")
    if not local or len(local) > MAX_LOCAL_PART:
        raise _refuse(f"the part before @ must have 1 to {MAX_LOCAL_PART} characters")
    if any(ch in _LOCAL_REFUSED for ch in local) or ".." in local or "." in (local[0], local[-1]):
        raise _refuse("the part before @ holds a character or dot that is not allowed")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_domain_label_ok(label) for label in labels):
        raise _refuse("the domain must be dotted names such as example.ru")
    return f"{local}@{domain.lower()}"


def mask_email(email: str) -> str:
    """`i***@example.ru`: the first letter and the domain, enough for the customer to recognise."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
