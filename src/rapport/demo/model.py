"""The things the demo world is made of: stores, people and the devices they own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rapport.demo.vocab import Country, Product

Address = dict[str, str]


@dataclass(frozen=True)
class Store:
    """A physical shop whose sensors and tills report events."""

    number: int
    store_id: str
    name: str
    city: str
    zones: tuple[str, ...]

    @property
    def pos_source(self) -> str:
        return f"pos-store-{self.number}"

    @property
    def sensor_source(self) -> str:
        return f"sensor-store-{self.number}"


@dataclass(frozen=True)
class Device:
    """A connected appliance one person will buy and register during the demo period."""

    serial: str
    product: Product


@dataclass
class Person:
    """One real human being of the demo world, with every identifier any system knows them by."""

    pid: str
    country: Country
    first_name: str
    last_name: str
    middle_name: str | None
    gender: str
    birth_date: date
    address: Address
    email: str  # the address they log in and are written to with; a household head's for dependents
    phone: str  # E.164
    customer_id: str | None  # None: never registered with the webshop or the ERP
    since: float  # when they became a customer (the window start for existing customers)
    is_new: bool
    activity: float  # multiplies every rate; lognormal around 1
    cookies: list[str] = field(default_factory=list)
    app_installs: list[str] = field(default_factory=list)
    loyalty_id: str | None = None
    loyalty_registered: bool = False  # the card is linked to the customer account
    loyalty_online: bool = False  # they also give the card number when ordering online
    home_store: int = 0
    devices: list[Device] = field(default_factory=list)
    twitter: str | None = None
    linkedin: str | None = None
    facebook: str | None = None
    instagram: str | None = None
    social_linked: bool = False  # the CRM knows their handles
    company: str | None = None  # set for business customers
    job_title: str | None = None
    account_id: str | None = None
    parent_account: str | None = None
    has_credit: bool = False
    household_head: str | None = None  # pid of the person whose email they share
    typo_email: str | None = None
    name_typo: bool = False
    disagreement: str | None = None  # which field the ERP and CRM disagree on
    newsletter: bool = False
    move_at: float | None = None
    new_address: Address | None = None

    @property
    def b2b(self) -> bool:
        return self.company is not None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def address_at(self, t: float) -> Address:
        if self.move_at is not None and self.new_address is not None and t >= self.move_at:
            return self.new_address
        return self.address
