"""What we sell and what we hold."""
from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow

#: the longest unit of measure (台, 套, 盒, 箱(10盒)…): a product's and an order line's
UNIT_MAX_LENGTH = 8
#: the longest model (型号) and name (品名): a product's and an order line's
MODEL_MAX_LENGTH = 80
NAME_MAX_LENGTH = 120


class Product(SQLModel, table=True):
    __tablename__ = "product"

    sku: str = Field(primary_key=True, max_length=40)
    model: str = Field(max_length=MODEL_MAX_LENGTH)
    name: str = Field(max_length=NAME_MAX_LENGTH)
    product_line: str = Field(max_length=40, index=True)
    unit: str = Field(default="台", max_length=UNIT_MAX_LENGTH)
    list_price: Decimal = Field(sa_type=sa.Numeric(14, 2))  # tax included, yuan
    tax_rate: Decimal = Field(default=Decimal("0.13"), sa_type=sa.Numeric(5, 4))
    active: bool = True


def same_unit(a: str, b: str) -> bool:
    """Whether two spellings are one unit of measure: alike after NFKC (full-width letters),
    surrounding spaces and the case of Latin letters (`台 ` is `台`, `ｐｃｓ` is `PCS`). Units
    that are only related (个 and PCS, 只 and 个) are not the same: no conversion is known."""
    return _unit_key(a) == _unit_key(b)


def _unit_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip().upper()


class StockLevel(SQLModel, table=True):
    __tablename__ = "stock_level"

    sku: str = Field(primary_key=True, foreign_key="product.sku", max_length=40)
    warehouse: str = Field(default="总仓", max_length=40)
    on_hand: int = 0
    reserved: int = 0
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved
