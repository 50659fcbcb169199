"""The demo shop wired end to end: orders in SQL (seeded), tools for order status, contact email and
returns.

>>> seed_orders(db.session)
6
>>> assistant = Assistant(store, kb, model, domain=Domain.load(DOMAIN_FILE), tools=shop_tools(),
...                       erasure_hooks=[detach_returns(db.session)])
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import Date, DateTime, ForeignKey, Integer, Numeric, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from assistant_core.db import Base
from dialog.tools import ToolContext, ToolError, ToolRegistry

DOMAIN_FILE = Path(__file__).parent / "domain.yaml"
ORDERS_FILE = Path(__file__).parent / "orders.json"
RETURN_WINDOW_DAYS = 30


class OrderRow(Base):
    """A demo order."""

    __tablename__ = "shop_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(32))
    placed_on: Mapped[date] = mapped_column(Date)
    delivered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    items: Mapped[str] = mapped_column(String(1000))
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    carrier: Mapped[str] = mapped_column(String(64))
    tracking: Mapped[str] = mapped_column(String(64))


class ReturnRow(Base):
    """A return request made through the assistant."""

    __tablename__ = "shop_returns"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(32), ForeignKey("shop_orders.id"))
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(1000))
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def seed_orders(
    sessions: sessionmaker[Session], path: Path = ORDERS_FILE, *, today: date | None = None
) -> int:
    """Insert the demo orders once (dates relative to today); returns how many were added."""
    today = today or date.today()
    rows = json.loads(path.read_text(encoding="utf-8"))
    try:
        with sessions.begin() as session:
            if session.scalar(select(func.count()).select_from(OrderRow)):
                return 0
            for row in rows:
                delivered = row["delivered_days_ago"]
                session.add(
                    OrderRow(
                        id=row["id"],
                        email=row["email"],
                        status=row["status"],
                        placed_on=today - timedelta(days=row["placed_days_ago"]),
                        delivered_on=(
                            None if delivered is None else today - timedelta(days=delivered)
                        ),
                        items=row["items"],
                        total=Decimal(row["total"]),
                        carrier=row["carrier"],
                        tracking=row["tracking"],
                    )
                )
    except IntegrityError:  # another process starting at the same time seeded them first
        return 0
    return len(rows)


def _shop_prefix(value: object) -> object:
    """`1042` and `nw 1042` are the shop's `NW-1042` (a model calling the tool may drop the
    prefix)."""
    if isinstance(value, str):
        digits = value.strip().upper().removeprefix("NW").strip(" -#")
        if digits.isdigit():
            return f"NW-{digits}"
    return value


OrderId = Annotated[
    str,
    BeforeValidator(_shop_prefix),
    Field(description="The order number, like NW-1042", pattern=r"^NW-\d{3,8}$"),
]


class OrderArgs(BaseModel):
    """Arguments of `order_status`."""

    order_id: OrderId


class EmailArgs(BaseModel):
    """Arguments of `update_contact_email`."""

    order_id: OrderId
    email: str = Field(
        description="The new contact email address", pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"
    )
    current_email: str = Field(
        description="The email address on the order now (proves it is the customer's order)",
        pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
    )


class ReturnArgs(BaseModel):
    """Arguments of `create_return`."""

    order_id: OrderId
    reason: str = Field(description="Why the customer returns it", min_length=3, max_length=500)
    email: str = Field(
        description="The email address on the order", pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"
    )


def _sessions(ctx: ToolContext) -> sessionmaker[Session]:
    if ctx.sessions is None:
        raise ToolError("The shop database is not available right now.")
    return ctx.sessions


def _order(session: Session, order_id: str) -> OrderRow:
    order = session.get(OrderRow, order_id)
    if order is None:
        raise ToolError(
            f"I couldn't find order {order_id}. Order numbers look like NW-1042 — "
            "could you check it?"
        )
    return order


def order_status(args: OrderArgs, ctx: ToolContext) -> dict[str, Any]:
    """Look up the status of an order by its number"""
    with _sessions(ctx)() as session:
        order = _order(session, args.order_id)
        sentence = {
            "processing": "is being prepared and has not shipped yet",
            "shipped": f"has shipped with {order.carrier} (tracking number {order.tracking})",
            "delivered": f"was delivered on {order.delivered_on:%d %B %Y}"
            if order.delivered_on
            else "was delivered",
            "cancelled": "was cancelled",
        }.get(order.status, f"is {order.status}")
        return {
            "order_id": order.id,
            "status": order.status,
            "carrier": order.carrier,
            "tracking": order.tracking,
            "message": f"Order {order.id} ({order.items}) {sentence}.",
        }


def update_contact_email(args: EmailArgs, ctx: ToolContext) -> dict[str, Any]:
    """Change the contact email address of an order"""
    with _sessions(ctx).begin() as session:
        order = _order(session, args.order_id)
        if order.email.lower() != args.current_email.lower():
            raise ToolError(
                f"That isn't the email address on order {order.id}, so I can't change it. "
                "A colleague can help if you no longer have access to it."
            )
        old, order.email = order.email, args.email.lower()
    return {
        "order_id": args.order_id,
        "email": args.email.lower(),
        "previous": _mask(old),
        "message": f"Done: order {args.order_id} will use {args.email.lower()} from now on.",
    }


def create_return(args: ReturnArgs, ctx: ToolContext) -> dict[str, Any]:
    """Register a return for a delivered order"""
    today = date.today()
    with _sessions(ctx).begin() as session:
        order = _order(session, args.order_id)
        if order.email.lower() != args.email.lower():
            raise ToolError(
                f"That email address doesn't match the one on order {order.id}, so I can't "
                "start the return."
            )
        if order.status != "delivered" or order.delivered_on is None:
            raise ToolError(
                f"Order {order.id} "
                + ("was cancelled" if order.status == "cancelled" else "has not been delivered yet")
                + ", so it can't be returned."
            )
        if (today - order.delivered_on).days > RETURN_WINDOW_DAYS:
            raise ToolError(
                f"Order {order.id} was delivered more than {RETURN_WINDOW_DAYS} days ago, "
                "outside the return window."
            )
        row = ReturnRow(
            order_id=order.id,
            email=args.email.lower(),
            reason=args.reason,
            conversation_id=ctx.conversation_id,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        number = f"R-{row.id:05d}"
    return {
        "return_id": number,
        "order_id": args.order_id,
        "message": f"Your return {number} for order {args.order_id} is registered. "
        f"We've emailed the return label to {args.email.lower()}.",
    }


def _mask(email: str) -> str:
    name, _, host = email.partition("@")
    return f"{name[:1]}***@{host}"


def shop_tools() -> ToolRegistry:
    """The demo shop's tools; the ones that change data ask the customer to confirm first."""
    tools = ToolRegistry()
    tools.tool()(order_status)
    tools.tool(
        side_effects=True, confirm="I'll change the contact email of order {order_id} to {email}."
    )(update_contact_email)
    tools.tool(
        side_effects=True,
        confirm="I'll start a return for order {order_id} ({reason}), confirming to {email}.",
    )(create_return)
    return tools


def detach_returns(sessions: sessionmaker[Session]) -> Callable[[str], None]:
    """Erasure hook: a return stays (it is a business record) but no longer points at the erased
    conversation."""

    def hook(conversation_id: str) -> None:
        with sessions.begin() as session:
            session.execute(
                update(ReturnRow)
                .where(ReturnRow.conversation_id == conversation_id)
                .values(conversation_id=None)
            )

    return hook


def demo_setup(
    sessions: sessionmaker[Session],
) -> tuple[Any, ToolRegistry, list[Callable[[str], None]]]:
    """The demo domain, its tools and erasure hook, with the orders seeded: what wiring needs."""
    from dialog.domain import Domain

    seed_orders(sessions)
    return Domain.load(DOMAIN_FILE), shop_tools(), [detach_returns(sessions)]
