"""WHAT THE BUSINESS IS: tables and pure domain logic. Imports nothing of the other layers."""
from models.base import SHANGHAI, business_date, set_clock, to_money, utcnow
from models.catalog import Product, StockLevel
from models.customers import (
    Customer, CustomerAlias, RegistryChange, SuspectName, SuspectSighting, SuspectStatus,
)
from models.fulfilment import Delivery, MovementImport, SalesReturn
from models.orders import (
    ORDER_STATUS_LABELS,
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
from models.rebates.tables import (
    OrderRebate, RebateBucketInputs, RebateLine, RebatePolicyVersion, SettlementRun,
)
from models.receivables import Payment, ReceivableInvoice
from models.staff import Staff
from models.vouchers import VoucherNumber
from models.work import TASK_LABELS, ConnectorCursor, Effect, InboxEvent, OperationLog, Todo

__all__ = [
    "SHANGHAI", "business_date", "set_clock", "to_money", "utcnow",
    "Product", "StockLevel", "Customer", "CustomerAlias", "RegistryChange", "SuspectName",
    "SuspectSighting", "SuspectStatus", "Delivery", "MovementImport", "SalesReturn",
    "OrderRebate", "RebateLine",
    "RebateBucketInputs", "RebatePolicyVersion", "SettlementRun", "Payment", "ReceivableInvoice",
    "ORDER_STATUS_LABELS", "STAGE_LABELS", "IntentOrder", "IntentOrderLine", "Opportunity", "OrderStatus",
    "Quote", "QuoteStatus", "SigningToken", "Stage", "Staff",
    "TASK_LABELS", "ConnectorCursor", "Effect", "InboxEvent", "OperationLog", "Todo",
    "VoucherNumber",
]
