"""The pages' words, money, points and dates in the store's locale (Russian, or English).

Money and plurals go through the project's own babel formatters (`money.format_money`,
`rules.messages.points_word`), so a screen says "1 234,50 ₽" and "3 балла" as the receipt does.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from babel.dates import format_date, format_datetime

from pos_loyalty.money import format_money
from pos_loyalty.rules.messages import is_russian, points_word
from pos_loyalty.rules.quote import coupon_valid_until

# key: (Russian, English)
CATALOGUE: dict[str, tuple[str, str]] = {
    "login.title": ("Вход", "Sign in"),
    "login.key": ("API-ключ", "API key"),
    "login.submit": ("Войти", "Sign in"),
    "login.hint": (
        "Ключ создаётся командой «pos-loyalty keys create --scope till».",
        "Create a key with `pos-loyalty keys create --scope till`.",
    ),
    "login.bad_key": ("Ключ неверен или отозван.", "The key is not valid or was revoked."),
    "login.wrong_scope": (
        "Этому ключу эта страница недоступна (нужна область: {scopes}).",
        "This key may not open this page (it needs scope {scopes}).",
    ),
    "logout": ("Выйти", "Sign out"),
    "csrf.refused": (
        "Форма устарела или отправлена с другого сайта. Обновите страницу и попробуйте снова.",
        "The form is stale or came from another site. Reload the page and try again.",
    ),
    "display.title": ("Экран покупателя", "Customer display"),
    "display.welcome": ("Добро пожаловать!", "Welcome!"),
    "display.idle_join": (
        "Станьте участником программы — наведите камеру телефона на код",
        "Join our loyalty program: point your phone's camera at the code",
    ),
    "display.idle_ask": (
        "Спросите кассира о карте покупателя",
        "Ask the cashier about our loyalty card",
    ),
    "display.hello": ("Здравствуйте, {name}!", "Hello, {name}!"),
    "display.balance": ("Баланс", "Balance"),
    "display.earn": ("Начислим", "You earn"),
    "display.burn": ("Спишем", "Paid with points"),
    "display.tier": ("Уровень", "Tier"),
    "display.no_tier": ("базовый", "base"),
    "display.to_next": ("до уровня «{tier}» осталось {missing}", "{missing} to «{tier}»"),
    "display.top_tier": ("высший уровень", "top tier"),
    "display.stamps": ("Штампы", "Stamps"),
    "display.subtotal": ("Сумма", "Subtotal"),
    "display.discounts": ("Скидки", "Discounts"),
    "display.total": ("К оплате", "To pay"),
    "display.coupons_next": ("Купоны на следующую покупку", "Coupons for your next visit"),
    "display.no_basket": ("Касса готова — покажите товары", "The till is ready"),
    "display.offline": ("Нет связи с кассой, переподключаемся…", "Reconnecting…"),
    "store.title": ("Магазин", "Store"),
    "store.devices": ("Устройства", "Devices"),
    "store.device": ("Устройство", "Device"),
    "store.state": ("Состояние", "State"),
    "store.queue": ("Очередь печати", "Print queue"),
    "store.last_error": ("Последняя ошибка", "Last error"),
    "store.connected": ("на связи", "connected"),
    "store.disconnected": ("нет связи", "disconnected"),
    "store.no_devices": ("Устройств нет", "No devices"),
    "store.lanes": ("Кассы", "Lanes"),
    "store.lane": ("Касса", "Lane"),
    "store.current_customer": ("Покупатель", "Customer"),
    "store.nobody": ("—", "—"),
    "store.search": ("Поиск покупателя", "Find a customer"),
    "store.search_hint": ("телефон или номер карты", "phone or card number"),
    "store.find": ("Найти", "Find"),
    "store.not_found": ("Покупатель не найден: {message}", "No customer found: {message}"),
    "store.customer": ("Покупатель", "Customer"),
    "store.phone": ("Телефон", "Phone"),
    "store.cards": ("Карты", "Cards"),
    "store.balance": ("Баланс", "Balance"),
    "store.expiring": ("сгорит {points} {at}", "{points} expire {at}"),
    "store.pending": ("Ожидают", "Pending"),
    "store.pending_until": ("{points} до {date}", "{points} until {date}"),
    "store.tier": ("Уровень", "Tier"),
    "store.lifetime": ("Покупки за всё время", "Lifetime spend"),
    "store.coupons": ("Купоны", "Coupons"),
    "store.no_coupons": ("Купонов нет", "No coupons"),
    "store.valid_until": ("до {date}", "until {date}"),
    "store.ledger": ("История баллов", "Points history"),
    "store.no_ledger": ("Операций нет", "No entries"),
    "store.reprint": ("Повторить чек", "Reprint a receipt"),
    "store.transaction": ("Номер продажи", "Sale id"),
    "store.reprint_lane": ("Касса (пусто — та же)", "Lane (empty: the sale's)"),
    "store.print": ("Печатать", "Print"),
    "store.reprinted": (
        "Чек {transaction} поставлен в очередь печати на кассе {lane}.",
        "Receipt {transaction} is queued on lane {lane}'s printer.",
    ),
    "store.program": ("Программа лояльности", "Loyalty program"),
    "store.version": ("Версия правил", "Rules version"),
    "store.no_rules": ("Правил нет", "No rules"),
    "store.program_local": (
        "Программа из {source}, без головного офиса",
        "Program from {source}, no head office",
    ),
    "store.bundle_none": (
        "Пакета от головного офиса ещё нет — программа из {source}",
        "No bundle from head office yet: program from {source}",
    ),
    "store.bundle_active": (
        "Пакет головного офиса v{version}, действует с {since}",
        "Head-office bundle v{version}, active since {since}",
    ),
    "store.bundle_pending": (
        "Ожидает вступления: v{version} с {start}",
        "Pending: v{version} from {start}",
    ),
    "store.synced": ("Последняя синхронизация: {when}", "Last sync: {when}"),
    "store.never_synced": ("Синхронизаций ещё не было", "Not synced yet"),
    "store.sync_failed": (
        "Последняя попытка {when} не удалась: {error}",
        "The last attempt at {when} failed: {error}",
    ),
    "store.today": ("Сегодня", "Today"),
    "store.sales": ("Продажи", "Sales"),
    "store.revenue": ("Выручка", "Revenue"),
    "store.refunds": ("Возвраты", "Refunds"),
    "store.points_issued": ("Баллов начислено", "Points issued"),
    "store.points_burned": ("Баллов списано", "Points burned"),
    "store.coupons_issued": ("Купонов выдано", "Coupons issued"),
    "store.coupons_redeemed": ("Купонов погашено", "Coupons redeemed"),
    "store.live": ("обновляется сам", "live"),
    "hq.title": ("Головной офис", "Head office"),
    "hq.nav_bundles": ("Программы", "Programs"),
    "hq.nav_fleet": ("Магазины", "Stores"),
    "hq.nav_reports": ("Отчёты", "Reports"),
    "hq.versions": ("Версии программы", "Program versions"),
    "hq.version": ("Версия", "Version"),
    "hq.effective_from": ("Действует с", "Effective from"),
    "hq.targets": ("Кому", "Targets"),
    "hq.everyone": ("все магазины", "all stores"),
    "hq.target_stores": ("магазины: {ids}", "stores: {ids}"),
    "hq.target_regions": ("регионы: {ids}", "regions: {ids}"),
    "hq.note": ("Комментарий", "Note"),
    "hq.who": ("Кто", "Who"),
    "hq.rollback_of": ("откат к v{version}", "rollback to v{version}"),
    "hq.no_bundles": ("Ещё ничего не опубликовано.", "Nothing published yet."),
    "hq.rollback": ("Вернуть", "Roll back"),
    "hq.dry_run": ("Прогноз", "Dry run"),
    "hq.upload": ("Новая версия программы", "New program version"),
    "hq.program_toml": (
        "Программа (TOML: [points], [[tiers]], [[rules]])",
        "Program (TOML: [points], [[tiers]], [[rules]])",
    ),
    "hq.file": ("или файл", "or a file"),
    "hq.stores_field": (
        "Магазины (через запятую, пусто — все)",
        "Stores (comma-separated, empty: all)",
    ),
    "hq.regions_field": ("Регионы (через запятую)", "Regions (comma-separated)"),
    "hq.known": ("Известны: {ids}", "Known: {ids}"),
    "hq.check": ("Проверить", "Check"),
    "hq.publish": ("Опубликовать", "Publish"),
    "hq.invalid": (
        "Программа не прошла проверку компилятора:",
        "The compiler refused the program:",
    ),
    "hq.problem_where": ("Где", "Where"),
    "hq.problem_key": ("Ключ", "Key"),
    "hq.problem_line": ("Строка", "Line"),
    "hq.problem_message": ("Сообщение компилятора", "Compiler's message"),
    "hq.valid": ("Программа верна: {rules} правил(а).", "The program is valid: {rules} rules."),
    "hq.changes_vs": ("Отличия от v{version}", "Changes from v{version}"),
    "hq.published": ("Опубликована версия v{version}.", "Version v{version} is published."),
    "hq.not_head_office": (
        "Этот сервис не головной офис: нет раздела [head_office].",
        "This service is not head office: there is no [head_office] section.",
    ),
    "hq.diff": ("Сравнить версии", "Compare versions"),
    "hq.diff_title": ("Отличия v{old} → v{new}", "Changes v{old} → v{new}"),
    "hq.compare": ("Сравнить", "Compare"),
    "hq.dry_title": (
        "Прогноз v{version} против {against}",
        "Dry run of v{version} against {against}",
    ),
    "hq.dry_own": ("программы этого сервиса", "this service's program"),
    "hq.since": ("Период", "Period"),
    "hq.run": ("Пересчитать", "Run"),
    "hq.sales_replayed": (
        "Продаж пересчитано: {count} (с {since})",
        "Sales replayed: {count} (since {since})",
    ),
    "hq.rule": ("Правило", "Rule"),
    "hq.baskets": ("Чеков", "Baskets"),
    "hq.discount": ("Скидка", "Discount"),
    "hq.points": ("Баллы", "Points"),
    "hq.liability_col": ("Обязательства", "Liability"),
    "hq.coupons": ("Купоны", "Coupons"),
    "hq.was": ("было", "was"),
    "hq.would_be": ("станет", "would be"),
    "hq.total": ("Итого", "Total"),
    "hq.cost": ("стоимость (скидка + баллы)", "cost (discount + points)"),
    "hq.revenue": ("выручка чеков", "revenue of baskets"),
    "hq.fleet": ("Магазины сети", "The fleet"),
    "hq.store": ("Магазин", "Store"),
    "hq.region": ("Регион", "Region"),
    "hq.active": ("Работает", "Active"),
    "hq.pending": ("Ожидает", "Pending"),
    "hq.target": ("Должен", "Target"),
    "hq.state": ("Состояние", "State"),
    "hq.behind": ("отстаёт", "behind"),
    "hq.current": ("актуален", "up to date"),
    "hq.never_seen": ("не выходил на связь", "never seen"),
    "hq.last_error": ("Ошибка", "Error"),
    "hq.last_seen": ("Был на связи", "Last seen"),
    "hq.software": ("ПО", "Software"),
    "hq.no_stores": (
        "Магазины не зарегистрированы (pos-loyalty hq add-store).",
        "No stores registered (pos-loyalty hq add-store).",
    ),
    "hq.results": ("Итоги правил", "Rule results"),
    "hq.results_span": (
        "{since} — {until}: продаж {sales}, выручка {revenue}",
        "{since} — {until}: {sales} sales, revenue {revenue}",
    ),
    "hq.points_issued": ("Начислено", "Issued"),
    "hq.points_burned": ("Списано", "Burned"),
    "hq.coupons_issued": ("Выдано", "Issued"),
    "hq.coupons_redeemed": ("Погашено", "Redeemed"),
    "hq.coupons_expired": ("Истекло", "Expired"),
    "hq.no_results": (
        "Продаж за период в базе головного офиса нет.",
        "No sales in head office's database for the period.",
    ),
    "hq.rfm": ("Сегменты RFM", "RFM segments"),
    "hq.customers": ("Покупателей", "Customers"),
    "hq.rfm_at": ("расчёт от {at}", "computed {at}"),
    "hq.no_rfm": (
        "Магазины ещё не прислали сегменты (pos-loyalty segments).",
        "No store has reported segments yet (pos-loyalty segments).",
    ),
    "hq.liability": ("Обязательства по баллам", "Points liability"),
    "hq.liability_now": ("{points} на {money}", "{points} worth {money}"),
    "hq.coupon_funnel": ("Купоны: выдано, погашено, истекло", "Coupons: issued, redeemed, expired"),
    "hq.from_reports": ("По отчётам магазинов: {stores}", "As the stores reported: {stores}"),
    "hq.no_reports": ("Магазины ещё не прислали отчётов.", "No store has reported yet."),
    # device states, as drivers report them (`state`); an unknown one is shown as it is
    "state.ready": ("готов", "ready"),
    "state.unknown": ("проверяется", "checking"),
    "state.not_started": ("не запущено", "not started"),
    "state.paper_out": ("нет бумаги", "out of paper"),
    "state.cover_open": ("открыта крышка", "cover open"),
    "state.printer_offline": ("принтер недоступен", "printer offline"),
    "state.printer_error": ("ошибка принтера", "printer error"),
    "state.printer_not_ready": ("принтер не готов", "printer not ready"),
    "state.render_failed": ("чек не удалось подготовить", "receipt could not be rendered"),
    "state.database_unavailable": ("нет связи с базой данных", "database unavailable"),
    "coupon.issued": ("действует", "valid"),
    "coupon.redeemed": ("погашен", "redeemed"),
    "coupon.expired": ("истёк", "expired"),
    "coupon.cancelled": ("аннулирован", "cancelled"),
    "entry.earn": ("начисление", "earned"),
    "entry.burn": ("списание", "burned"),
    "entry.expire": ("сгорание", "expired"),
    "entry.adjust": ("корректировка", "adjusted"),
    "entry.reverse": ("сторно", "reversed"),
}


class Words:
    """One store's language on the pages: `w("key", name=...)`, `w.money(12345)`."""

    def __init__(self, *, locale: str, currency: str, tz: tzinfo) -> None:
        self.locale = locale
        self.currency = currency
        self.tz = tz
        self.russian = is_russian(locale)
        self.lang = "ru" if self.russian else "en"

    def __call__(self, key: str, **values: object) -> str:
        ru, en = CATALOGUE[key]
        text = ru if self.russian else en
        return text.format(**values) if values else text

    def state(self, code: str) -> str:
        """A device state code in words; codes this catalogue does not know are shown as sent."""
        key = f"state.{code}"
        return self(key) if key in CATALOGUE else code

    def money(self, amount: int | None) -> str:
        return format_money(int(amount or 0), self.currency, self.locale)

    def points(self, count: int | None) -> str:
        return points_word(int(count or 0), self.locale)

    def when(self, moment: datetime | str | None) -> str:
        """A moment in the store's time zone: "07.12.2026 14:05"."""
        if moment is None:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return format_datetime(moment.astimezone(self.tz), "dd.MM.yyyy HH:mm", locale=self.locale)

    def date(self, moment: datetime | str | None) -> str:
        return self.when(moment)[:10]

    def valid_until(self, expires_at: datetime | None) -> str:
        """A coupon's last valid local day, as the receipt prints it (expiring at local midnight,
        it is good through the day before)."""
        if expires_at is None:
            return ""
        last_day = coupon_valid_until(expires_at, self.tz)
        return format_date(last_day, "dd.MM.yyyy", locale=self.locale)
