"""WHAT THE BUSINESS IS: tables and pure domain logic. Imports nothing of the other layers."""
from models.base import SHANGHAI, business_date, to_money, utcnow
from models.catalog import Product, StockLevel
from models.customers import Customer, CustomerAlias
from models.orders import (
    STAGE_LABELS,
    IntentOrder,
    IntentOrderLine,
    Opportunity,
    OrderStatus,
    Quote,
    QuoteStatus,
    SigningToken,
    Stage,
)
from models.staff import Staff
from models.work import TASK_LABELS, Effect, InboxEvent, OperationLog, Todo

__all__ = [
    "SHANGHAI", "business_date", "to_money", "utcnow",
    "Product", "StockLevel", "Customer", "CustomerAlias",
    "STAGE_LABELS", "IntentOrder", "IntentOrderLine", "Opportunity", "OrderStatus",
    "Quote", "QuoteStatus", "SigningToken", "Stage", "Staff",
    "TASK_LABELS", "Effect", "InboxEvent", "OperationLog", "Todo",
]
