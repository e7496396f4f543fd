"""What every repository shares: tenant scoping, flushing, and how values are stored.

Times are stored as aware UTC. "Newest first" lists order by the timestamp and then the
id; the timestamps of rows that order a history (deployments, events, deliveries) come
from ``ordered_now()``, which never repeats within a process, so rows created in one
burst keep their creation order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import DateTime, TypeDecorator, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from controller.errors import ConflictError, NotFoundError, ValidationError
from controller.store.models import DeploymentStatus

RowT = TypeVar("RowT", bound=SQLModel)

_IMMUTABLE_FIELDS = frozenset({"id", "tenant_id"})


# -- time -------------------------------------------------------------------------------

_clock_lock = threading.Lock()
_last_stamp = datetime.min.replace(tzinfo=UTC)


def ordered_now() -> datetime:
    """UTC now, strictly after every earlier value this process handed out."""
    global _last_stamp
    with _clock_lock:
        now = datetime.now(UTC)
        if now <= _last_stamp:
            now = _last_stamp + timedelta(microseconds=1)
        _last_stamp = now
        return now


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _column_value(model: type[SQLModel], field: str, value: object) -> object:
    """``value`` as the column stores it: enums by value, datetimes in the column's form."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        column_type = inspect(model).columns[field].type
        impl = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
        utc = as_utc(value)
        return utc if isinstance(impl, DateTime) and impl.timezone else utc.replace(tzinfo=None)
    return value


def status_value(value: object) -> str:
    try:
        return DeploymentStatus(str(value)).value
    except ValueError as exc:
        raise ValidationError(f"unknown deployment status {value!r}") from exc


def assign(row: SQLModel, fields: dict[str, object]) -> None:
    model = type(row)
    for name, value in fields.items():
        if name not in model.model_fields:
            raise ValidationError(f"{model.__name__} has no field {name!r}")
        if name in _IMMUTABLE_FIELDS:
            raise ValidationError(f"{model.__name__}.{name} cannot be changed")
        setattr(row, name, _column_value(model, name, value))


class Repository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _scoped(self, statement: SelectOfScalar[RowT], tenant_column: Any) -> SelectOfScalar[RowT]:
        if self.tenant_id is None:
            return statement
        return statement.where(tenant_column == self.tenant_id)

    def _check_owner(self, row: Any, what: str) -> None:
        """Refuse to act on a row of another tenant, as if it did not exist."""
        if self.tenant_id is not None and row.tenant_id != self.tenant_id:
            raise NotFoundError(f"{what} '{row.id}' not found")

    def _require_tenant(self, what: str) -> str:
        if self.tenant_id is None:
            raise ValidationError(f"{what} needs a tenant scope")
        return self.tenant_id

    async def _first(self, statement: SelectOfScalar[RowT]) -> RowT | None:
        return (await self.session.exec(statement)).first()

    async def _all(self, statement: SelectOfScalar[RowT]) -> list[RowT]:
        return list((await self.session.exec(statement)).all())

    async def _flush_new(self, rows: Sequence[SQLModel], conflict: str) -> None:
        self.session.add_all(rows)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc

    async def _save(self, row: RowT, fields: dict[str, object]) -> RowT:
        assign(row, fields)
        self.session.add(row)
        await self.session.flush()
        return row
