"""Looking up presented coupons, issuing new ones, and redeeming them exactly once.

Redemption is one conditional `UPDATE … WHERE status = 'issued'`: of two tills spending one
coupon at the same moment, the database lets exactly one row change, on SQLite (writers queue
behind `BEGIN IMMEDIATE`) and on PostgreSQL (the second UPDATE waits for the row lock, then sees
the new status and changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from pos_loyalty.coupons.codes import (
    CouponCodeError,
    coupon_qr,
    format_code,
    new_code,
    parse_presented,
)
from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.errors import Conflict, InvalidInput, NotFound
from pos_loyalty.rules.inputs import CouponSnapshot, PresentedCoupon
from pos_loyalty.rules.quote import coupon_valid_until
from pos_loyalty.security import StoreSecret
from pos_loyalty.storage import UnitOfWork


class CouponAlreadyRedeemed(Conflict):
    code = "coupon_already_redeemed"


class CouponInvalid(InvalidInput):
    code = "coupon_invalid"


class CouponExpired(InvalidInput):
    code = "coupon_expired"


class CouponNotOwned(InvalidInput):
    code = "coupon_not_owned"


class CouponCancelled(InvalidInput):
    code = "coupon_cancelled"


class CouponNotYetValid(InvalidInput):
    code = "coupon_not_yet_valid"


class CouponNotApplicable(InvalidInput):
    code = "coupon_not_applicable"


PROBLEM_ERRORS: dict[str, type[InvalidInput] | type[Conflict]] = {
    "redeemed": CouponAlreadyRedeemed,
    "malformed": CouponInvalid,
    "bad_check": CouponInvalid,
    "forged": CouponInvalid,
    "unknown": CouponInvalid,
    "expired": CouponExpired,
    "not_owned": CouponNotOwned,
    "cancelled": CouponCancelled,
    "not_yet_valid": CouponNotYetValid,
}


def coupon_error(code: str, reason: str, message: str) -> InvalidInput | Conflict:
    """The error a commit fails with for a coupon the quote could not use."""
    error = PROBLEM_ERRORS.get(reason, CouponNotApplicable)
    return error(
        f"coupon {format_code(code) if len(code) == 11 else code}: {message}",
        details={"coupon": code, "reason": reason},
    )


def _problem(coupon: Coupon, *, customer_id: str | None, now: datetime) -> str | None:
    if coupon.status == CouponStatus.REDEEMED.value:
        return "redeemed"
    if coupon.status == CouponStatus.CANCELLED.value:
        return "cancelled"
    if coupon.status == CouponStatus.EXPIRED.value or coupon.expires_at <= now:
        return "expired"
    if coupon.valid_from > now:
        return "not_yet_valid"
    if coupon.owner_customer_id is not None and coupon.owner_customer_id != customer_id:
        return "not_owned"
    return None


def snapshot(coupon: Coupon) -> CouponSnapshot:
    return CouponSnapshot(
        code=coupon.code,
        label=coupon.label,
        amount_off=coupon.amount_off,
        percent_off=coupon.percent_off,
        min_subtotal=coupon.min_subtotal,
        skus=frozenset(coupon.skus),
        categories=frozenset(coupon.categories),
        stack_group=coupon.stack_group,
        valid_from=coupon.valid_from,
        expires_at=coupon.expires_at,
        owner_customer_id=coupon.owner_customer_id,
    )


def look_up_presented(
    *,
    uow: UnitOfWork,
    secret: StoreSecret,
    texts: Sequence[str],
    customer_id: str | None,
    now: datetime,
) -> list[PresentedCoupon]:
    """What the engine needs for each code the till sent: a snapshot, or the problem with it.
    One query for all codes."""
    parsed: list[tuple[str, str | None, str | None]] = []  # (code or text, code, problem)
    for text in texts:
        try:
            parsed_code = parse_presented(secret, text).code
        except CouponCodeError as exc:
            parsed.append(
                (text.strip(), None, exc.reason if exc.reason == "forged" else "malformed")
            )
        else:
            parsed.append((parsed_code, parsed_code, None))
    codes = {code for _, code, _ in parsed if code}
    found: dict[str, Coupon] = {}
    if codes:
        rows = uow.session.exec(select(Coupon).where(col(Coupon.code).in_(codes)))
        found = {c.code: c for c in rows}
    presented: list[PresentedCoupon] = []
    seen: set[str] = set()
    for shown, code, problem in parsed:
        if code is None:
            presented.append(PresentedCoupon(shown, None, problem))
            continue
        if code in seen:
            presented.append(PresentedCoupon(code, None, "duplicate"))
            continue
        seen.add(code)
        coupon = found.get(code)
        if coupon is None:
            presented.append(PresentedCoupon(code, None, "unknown"))
            continue
        reason = _problem(coupon, customer_id=customer_id, now=now)
        if reason:
            presented.append(PresentedCoupon(code, None, reason))
        else:
            presented.append(PresentedCoupon(code, snapshot(coupon)))
    return presented


def redeem_coupon(
    *, uow: UnitOfWork, code: str, customer_id: str | None, transaction_id: str, now: datetime
) -> None:
    """Spend the coupon for this transaction, or raise why not; exactly one of any number of
    concurrent attempts succeeds."""
    owner_ok: Any = col(Coupon.owner_customer_id).is_(None)
    if customer_id is not None:
        owner_ok = owner_ok | (col(Coupon.owner_customer_id) == customer_id)
    stmt = (
        update(Coupon)
        .where(
            col(Coupon.code) == code,
            col(Coupon.status) == CouponStatus.ISSUED.value,
            col(Coupon.valid_from) <= now,
            col(Coupon.expires_at) > now,
            owner_ok,
        )
        .values(
            status=CouponStatus.REDEEMED.value,
            redeemed_by_transaction_id=transaction_id,
            redeemed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    result: Any = uow.session.execute(stmt)
    if result.rowcount == 1:
        return
    coupon = uow.session.get(Coupon, code, populate_existing=True)
    reason = "unknown" if coupon is None else _problem(coupon, customer_id=customer_id, now=now)
    raise coupon_error(code, reason or "redeemed", "cannot be redeemed")


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    code: str
    display_code: str
    qr: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_from: datetime
    expires_at: datetime
    rule_id: str | None
    owner_customer_id: str | None

    @property
    def valid_until(self) -> date:
        """The last local day it is good on (`expires_at` carries the store's offset)."""
        return coupon_valid_until(self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.display_code,
            "qr": self.qr,
            "label": self.label,
            "rule_id": self.rule_id,
        }
        if self.amount_off is not None:
            out["amount_off"] = self.amount_off
        if self.percent_off is not None:
            out["percent_off"] = self.percent_off
        out["min_subtotal"] = self.min_subtotal
        out["valid_from"] = self.valid_from.isoformat()
        out["expires_at"] = self.expires_at.isoformat()
        out["valid_until"] = self.valid_until.isoformat()
        out["bearer"] = self.owner_customer_id is None
        return out


# On the driver: a sale that earns a coupon issues it inside the commit's transaction.
_ISSUE = (
    "INSERT INTO coupons (code, owner_customer_id, rule_id, label, amount_off, percent_off,"
    " min_subtotal, skus, categories, stack_group, valid_from, expires_at, status,"
    " issued_by_transaction_id, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, '[]', '[]', ?, ?, ?, ?, ?, ?)"
)


def issue_coupon(
    *,
    uow: UnitOfWork,
    secret: StoreSecret,
    owner_customer_id: str | None,
    label: str,
    amount_off: int | None,
    percent_off: int | None,
    min_subtotal: int,
    valid_from: datetime,
    expires_at: datetime,
    rule_id: str | None = None,
    transaction_id: str | None = None,
    stack_group: str | None = "coupon",
    now: datetime,
) -> IssuedCoupon:
    """Create a coupon with a fresh code (50 random bits)."""
    code = new_code()  # a clash (1 in 10^15) fails the primary key and the whole commit
    uow.driver(
        _ISSUE,
        (
            code,
            owner_customer_id,
            rule_id,
            label,
            amount_off,
            percent_off,
            min_subtotal,
            stack_group,
            valid_from,
            expires_at,
            CouponStatus.ISSUED.value,
            transaction_id,
            now,
        ),
    )
    return IssuedCoupon(
        code=code,
        display_code=format_code(code),
        qr=coupon_qr(secret, code),
        label=label,
        amount_off=amount_off,
        percent_off=percent_off,
        min_subtotal=min_subtotal,
        valid_from=valid_from,
        expires_at=expires_at,
        rule_id=rule_id,
        owner_customer_id=owner_customer_id,
    )


def cancel_unused(
    *, uow: UnitOfWork, codes: Sequence[str], now: datetime
) -> tuple[list[str], list[str]]:
    """Cancel coupons still unused; returns (cancelled, already used) display codes."""
    cancelled: list[str] = []
    used: list[str] = []
    for code in codes:
        result: Any = uow.session.execute(
            update(Coupon)
            .where(col(Coupon.code) == code, col(Coupon.status) == CouponStatus.ISSUED.value)
            .values(status=CouponStatus.CANCELLED.value, cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            cancelled.append(format_code(code))
        else:
            coupon = uow.session.get(Coupon, code, populate_existing=True)
            if coupon is not None and coupon.status == CouponStatus.REDEEMED.value:
                used.append(format_code(code))
    return cancelled, used


def return_redeemed(*, uow: UnitOfWork, transaction_id: str) -> list[str]:
    """Give back the coupons a refunded sale spent (status issued again; expiry still counts)."""
    result = uow.session.exec(
        select(Coupon).where(
            col(Coupon.redeemed_by_transaction_id) == transaction_id,
            col(Coupon.status) == CouponStatus.REDEEMED.value,
        )
    )
    returned = []
    for coupon in result:
        coupon.status = CouponStatus.ISSUED.value
        coupon.redeemed_by_transaction_id = None
        coupon.redeemed_at = None
        uow.session.add(coupon)
        returned.append(format_code(coupon.code))
    return returned


@dataclass(frozen=True, slots=True)
class CouponView:
    coupon: Coupon
    status: str  # the stored status, with `expired` shown once the time has passed
    qr: str


def coupon_status(*, uow: UnitOfWork, secret: StoreSecret, text: str, now: datetime) -> CouponView:
    try:
        code = parse_presented(secret, text).code
    except CouponCodeError as exc:
        raise CouponInvalid(str(exc), details={"reason": exc.reason}) from None
    coupon = uow.session.get(Coupon, code)
    if coupon is None:
        raise NotFound(f"no coupon {format_code(code)}", code="coupon_not_found")
    status = coupon.status
    if status == CouponStatus.ISSUED.value and coupon.expires_at <= now:
        status = CouponStatus.EXPIRED.value
    return CouponView(coupon=coupon, status=status, qr=coupon_qr(secret, code))


def expire_coupons(*, uow: UnitOfWork, now: datetime) -> int:
    """Mark issued coupons past their time as expired (reads already treat them so)."""
    result: Any = uow.session.execute(
        update(Coupon)
        .where(col(Coupon.status) == CouponStatus.ISSUED.value, col(Coupon.expires_at) <= now)
        .values(status=CouponStatus.EXPIRED.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
