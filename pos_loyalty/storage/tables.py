"""Every table of the project, imported in one place so the metadata is complete for migrations."""

from sqlmodel import SQLModel

from pos_loyalty.apikeys.models import ApiKey
from pos_loyalty.customers.models import Card, Customer

metadata = SQLModel.metadata

__all__ = ["ApiKey", "Card", "Customer", "metadata"]
