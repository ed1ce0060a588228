"""The demo's shop: its first customers and the goods its tills sell (prices in kopecks)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {"phone": "8 (916) 123-45-67", "name": "Иван Петров", "birthday": "1985-03-14"},
    {"phone": "+7 903 765 43 21", "name": "Мария Смирнова", "consents": {"sms": True}},
    {"phone": "9261112233", "name": "Ольга Кузнецова"},
]


def _line(sku: str, name: str, category: str, qty: int | float, unit_price: int) -> dict[str, Any]:
    return {"sku": sku, "name": name, "category": category, "qty": qty, "unit_price": unit_price}


MILK = _line("4601234567890", "Молоко 3,2% 1 л", "dairy", 2, 8990)
CROISSANT = _line("4607001234567", "Круассан", "bakery", 2, 5900)
CAPPUCCINO = _line("2000000012345", "Капучино 0,3 л", "coffee", 2, 17900)
CHEESE = _line("2100000054321", "Сыр Российский, вес", "cheese", 0.356, 79900)  # weighed: 0,356 kg
CHOCOLATE = _line("4600000000777", "Шоколад тёмный 100 г", "sweets", 1, 9900)
# tobacco: [no_rewards] in config.toml, no reward may touch it (15-FZ art. 16)
CIGARETTES = _line("4600000000001", "Сигареты «Ява»", "tobacco", 1, 22900)
SALMON = _line("4600000004242", "Сёмга слабосолёная 200 г", "fish", 2, 64900)
# two of these for the price of one ("yoghurt-2-for-1" in config.toml, no card needed)
YOGHURT = _line("4600000000555", "Йогурт клубничный 125 г", "dairy", 2, 5490)
ECLAIR = _line("4600000000011", "Эклер", "desserts", 2, 12000)


def birthday_in(days: int, today: date) -> str:
    """A birthday `days` from today (born 1990): the birthday offer fires whenever the demo runs."""
    upcoming = today + timedelta(days=days)
    if (upcoming.month, upcoming.day) == (2, 29):
        upcoming -= timedelta(days=1)
    return upcoming.replace(year=1990).isoformat()
