"""Who the person is on file: profiles, consents, linked identifiers, addresses and trading accounts."""

from __future__ import annotations

from datetime import date

from rapport.demo.life import DAY, HOUR, MINUTE, OFFICE, SITE, Life
from rapport.demo.model import Person
from rapport.demo.people import fold
from rapport.demo.sink import Data
from rapport.demo.vocab import COUNTRIES, JOB_TITLES

_ROLES = ("Accounts payable", "Site manager", "Buyer", "Housekeeping lead", "Director")


def _swapped(born: date) -> str:
    """The birth date as someone who mixed up day and month would have typed it."""
    if born.day <= 12 and born.day != born.month:
        return date(born.year, born.day, born.month).isoformat()
    return date(born.year, born.month, max(1, born.day - 10)).isoformat()


def _misspelt(name: str, life: Life) -> str:
    if len(name) < 4:
        return name + name[-1]
    i = life.rng.randrange(1, len(name) - 2)
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def _erp_profile(life: Life, t: float) -> Data:
    p = life.p
    address = dict(p.address_at(t))
    data: Data = {"first_name": p.first_name, "last_name": p.last_name}
    if p.disagreement == "address":
        number = "".join(c for c in address["line1"] if c.isdigit())
        address["line1"] = address["line1"].replace(number, str(int(number) + 2), 1)
    data["address"] = address
    if p.disagreement == "birth_date":
        data["birth_date"] = _swapped(p.birth_date)
    elif life.rng.random() < 0.5:
        data["birth_date"] = p.birth_date.isoformat()
    data["locale"] = p.country.locale.split("-")[0] if p.disagreement == "locale" else p.country.locale
    if p.company is not None:
        data["company"] = p.company
    return data


def _crm_profile(p: Person) -> Data:
    data: Data = {"first_name": p.first_name, "last_name": p.last_name}
    if p.middle_name is not None:
        data["middle_name"] = p.middle_name
    data["birth_date"] = p.birth_date.isoformat()
    data["gender"] = p.gender
    data["locale"] = p.country.locale
    if p.company is not None:
        data["company"] = p.company
        data["job_title"] = p.job_title
    return data


def profiles(life: Life) -> None:
    """The ERP's and the CRM's view of the person, as they are loaded or as the person signs up."""
    p, rng = life.p, life.rng
    if p.customer_id is None:  # a newsletter subscriber the CRM knows by email alone
        data: Data = {"first_name": p.first_name, "locale": p.country.locale}
        # within the window, so that someone who signs up late still appears in the world
        known_at = life.later(p.since, 0, min(20 * DAY, life.end - p.since))
        life.emit(known_at, "profile.updated", "crm", {"email": p.email}, data)
        return
    if p.is_new:
        cookie = p.cookies[0]
        life.emit(
            p.since,
            "page.viewed",
            "webshop",
            {"cookie_id": cookie, "email": p.email},
            {"url": f"{SITE}/account/welcome", "title": "Welcome to Rapport Home"},
        )
        life.logged_in.add(cookie)
        crm_at, erp_at = life.later(p.since, MINUTE, 10 * MINUTE), life.later(p.since, 10 * MINUTE, HOUR)
    else:  # the first load of both systems when the platform went live
        erp_at, crm_at = life.later(life.start, 0, 6 * HOUR), life.later(life.start, 6 * HOUR, 30 * HOUR)
    erp_ids = life.account_ids() if rng.random() < 0.6 else {**life.account_ids(), "email": p.email}
    life.emit(erp_at, "profile.updated", "erp", erp_ids, _erp_profile(life, erp_at))
    crm_ids = life.customer_ids()
    if rng.random() < 0.6:
        crm_ids["phone"] = life.phone()
    life.emit(crm_at, "profile.updated", "crm", crm_ids, _crm_profile(p))
    social: dict[str, object] = {}
    social_ids = {"email": p.email}
    for kind, handle in (("twitter", p.twitter), ("linkedin", p.linkedin), ("facebook", p.facebook)):
        if handle is not None:
            social[kind] = social_ids[kind] = handle
    if p.instagram is not None:
        social["instagram"] = p.instagram
    if p.social_linked and social:
        life.emit(life.later(crm_at, DAY, 60 * DAY), "profile.updated", "crm", social_ids, {"social": social})
    if p.typo_email is not None:
        data = {"first_name": p.first_name, "last_name": p.last_name, "locale": p.country.locale}
        life.emit(
            life.later(p.since, 3 * DAY, 150 * DAY), "profile.updated", "crm", {"email": p.typo_email}, data
        )
    if p.name_typo:
        field = "last_name" if rng.random() < 0.6 else "first_name"
        data = {field: _misspelt(p.last_name if field == "last_name" else p.first_name, life)}
        life.emit(life.later(crm_at, 2 * DAY, 120 * DAY), "profile.updated", "crm", life.customer_ids(), data)
    if p.company is not None and rng.random() < 0.2:
        title = rng.choice([j for j in JOB_TITLES if j != p.job_title])
        life.emit(
            life.later(crm_at, 10 * DAY, 170 * DAY),
            "profile.updated",
            "crm",
            life.customer_ids(),
            {"job_title": title},
        )
    if p.move_at is not None and p.new_address is not None:
        kind = "home" if rng.random() < 0.85 else "billing"
        data = {"address": dict(p.new_address)}
        if rng.random() < 0.7:
            data["kind"] = kind
        life.emit(p.move_at, "address.changed", "crm", life.customer_ids(), data)
        erp_later = life.later(p.move_at, DAY, 10 * DAY)
        life.emit(erp_later, "profile.updated", "erp", life.account_ids(), {"address": dict(p.new_address)})


def _consent(
    life: Life, t: float, source: str, ids: dict[str, str], what: str, note: str | None = None
) -> None:
    """``what``: "purpose status [channel]", e.g. "marketing granted email"."""
    purpose, status, *channel = what.split()
    data: Data = {"purpose": purpose, "status": status}
    if channel:
        data["channel"] = channel[0]
    if note is not None:
        data["note"] = note
    life.emit(t, "consent.changed", source, ids, data)


def consents(life: Life) -> None:
    """Service consent on signing up; marketing by email for many, some of whom change their mind; a few
    ask to be left alone."""
    p, rng = life.p, life.rng
    first = p.since if p.is_new else life.start
    if p.customer_id is not None:
        service = "service granted any" if rng.random() < 0.5 else "service granted"
        _consent(life, life.later(first, MINUTE, 2 * HOUR), "crm", life.customer_ids(), service)
        if rng.random() < 0.4:
            answer = "personalisation granted" if rng.random() < 0.8 else "personalisation denied"
            _consent(life, life.later(first, HOUR, 30 * DAY), "webshop", life.customer_ids(), answer)
        if rng.random() < 0.12:
            at = life.later(first, HOUR, 60 * DAY)
            _consent(life, at, "crm", {"phone": life.phone()}, "marketing granted sms")
    if p.newsletter and p.household_head is None:
        granted = life.later(first, MINUTE, 10 * DAY if p.is_new else DAY)
        source = "mailer" if p.customer_id is None or rng.random() < 0.4 else "webshop"
        ids = {"email": p.email}
        if source == "mailer" and p.customer_id is None and rng.random() < 0.5:
            ids["cookie_id"] = p.cookies[0]  # signed up in the website footer
        _consent(life, granted, source, ids, "marketing granted email")
        life.marketing_from = granted
        if rng.random() < 0.15:
            revoked = rng.uniform(granted, life.end)
            note = rng.choice(("Unsubscribed via footer link", "Too many emails, please stop", None))
            _consent(life, revoked, "mailer", {"email": p.email}, "marketing revoked email", note)
            life.marketing_until = revoked
    elif p.customer_id is not None and rng.random() < 0.1:
        _consent(
            life, life.later(first, HOUR, 5 * DAY), "webshop", {"email": p.email}, "marketing denied email"
        )
    if p.loyalty_id is not None and rng.random() < 0.7:
        at = life.later(first, 0, 20 * DAY)
        _consent(life, at, "crm", {"loyalty_id": p.loyalty_id}, "in_store_recognition granted")
    if rng.random() < 0.03:  # "leave me alone": no personalisation, no recognition in store
        at = rng.uniform(first + HOUR, life.end)
        source = "webshop" if rng.random() < 0.6 else "crm"
        _consent(life, at, source, life.customer_ids(), "leave_me_alone granted")


def links(life: Life) -> None:
    """Identifiers a system knows to belong together: loyalty cards registered to a customer account."""
    p = life.p
    if p.loyalty_id is not None and p.loyalty_registered and p.customer_id is not None:
        at = life.later(p.since, HOUR, 40 * DAY) if p.is_new else life.later(life.start, 0, 2 * DAY)
        life.emit(
            at,
            "identity.linked",
            "crm",
            {"loyalty_id": p.loyalty_id, "customer_id": p.customer_id},
            {"reason": "Loyalty card registered to the customer account"},
        )


def trading(life: Life) -> None:
    """Business customers' accounts, their contacts and credit limits; store credit for a few consumers."""
    p, rng = life.p, life.rng
    if p.customer_id is None:
        return
    first = p.since if p.is_new else life.start
    currency = p.country.currency
    if p.company is not None and p.account_id is not None:
        limit = float(rng.choice((5_000, 10_000, 20_000, 50_000)))
        data: Data = {
            "account_id": p.account_id,
            "company_name": p.company,
            "credit_limit": limit,
            "currency": currency,
            "payment_terms_days": rng.choice((14, 30, 30, 45, 60)),
        }
        if p.parent_account is not None:
            data["parent_account"] = p.parent_account
        life.emit(life.later(first, HOUR, DAY), "account.updated", "erp", life.account_ids(), data)
        if rng.random() < 0.4:
            life.emit(
                life.later(first, 20 * DAY, 150 * DAY),
                "account.updated",
                "erp",
                life.account_ids(),
                {"account_id": p.account_id, "credit_limit": limit * 2, "currency": currency},
            )
        domain = fold(p.company)[:12] + ".example.com"
        for _ in range(rng.randint(1, 2)):
            country = rng.choice(COUNTRIES) if rng.random() < 0.2 else p.country
            first_name = rng.choice(country.female + country.male)
            last_name = rng.choice(country.last)
            contact: Data = {
                "name": f"{first_name} {last_name}",
                "role": rng.choice(_ROLES),
                "email": f"{fold(first_name)}.{fold(last_name)}@{domain}",
            }
            if rng.random() < 0.6:
                digits = p.country.phone_digits
                contact["phone"] = f"{p.country.phone_prefix}{rng.randrange(10 ** (digits - 1), 10**digits)}"
            life.emit(
                life.later(first, DAY, 90 * DAY), "contact_person.added", "crm", life.account_ids(), contact
            )
    elif p.has_credit:
        at = life.clock(life.later(first, DAY, 90 * DAY), OFFICE)
        life.emit(
            at,
            "account.updated",
            "erp",
            life.account_ids(),
            {"credit_limit": float(rng.choice((500, 1_000, 1_500, 2_500))), "currency": currency},
        )
