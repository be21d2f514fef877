"""Visits to the website and the app: anonymous cookies that later log in, and the orders placed there."""

from __future__ import annotations

from rapport.demo.commerce import OrderPlan, place_order
from rapport.demo.life import DAY, LEISURE, SITE, Life
from rapport.demo.sink import Data
from rapport.demo.vocab import APPLIANCES, CLOTHING, HOUSEHOLD, PAGES, REFERRERS, Product


def _product(life: Life) -> Product:
    roll = life.rng.random()
    pool = CLOTHING if roll < 0.6 else HOUSEHOLD if roll < 0.85 else APPLIANCES
    product = life.rng.choice(pool)
    life.viewed.append(product)
    if len(life.viewed) > 6:
        del life.viewed[0]
    return product


def _web_session(life: Life, t: float, cookie: str, *, plan: OrderPlan | None) -> None:
    p, rng = life.p, life.rng
    sid = life.numbers.next("session")
    if cookie not in life.consented:
        life.consented.add(cookie)
        status = "granted" if rng.random() < 0.75 else "denied"
        life.emit(
            t - 2,
            "consent.changed",
            "webshop",
            {"cookie_id": cookie},
            {"purpose": "analytics", "status": status, "channel": "any"},
        )
    can_log_in = p.customer_id is not None and t >= p.since
    log_in = can_log_in and cookie not in life.logged_in and (plan is not None or rng.random() < 0.3)
    views = rng.randint(2, 6) if plan is None else rng.randint(2, 4)
    for i in range(views):
        ids = {"cookie_id": cookie}
        if rng.random() < 0.55:
            product = _product(life)
            data: Data = {
                "sku": product.sku,
                "name": product.name,
                "url": SITE + product.path,
                "price": life.price(product),
                "session_id": sid,
            }
            life.emit(t, "product.viewed", "webshop", ids, data)
        else:
            path, title = rng.choice(PAGES)
            data = {"url": SITE + path, "title": title, "session_id": sid}
            if i == 0 and rng.random() < 0.6:
                data["referrer"] = rng.choice(REFERRERS)
            life.emit(t, "page.viewed", "webshop", ids, data)
        t += rng.uniform(10, 150)
        if log_in and i == 0:
            life.emit(
                t,
                "page.viewed",
                "webshop",
                {"cookie_id": cookie, "email": p.email},
                {"url": SITE + "/account/login", "title": "Sign in", "session_id": sid},
            )
            life.logged_in.add(cookie)
            t += rng.uniform(5, 30)
    if plan is not None:
        life.emit(
            t,
            "page.viewed",
            "webshop",
            {"cookie_id": cookie},
            {"url": SITE + "/checkout", "title": "Checkout", "session_id": sid},
        )
        place_order(life, t + rng.uniform(30, 240), plan)


def _app_session(life: Life, t: float, install: str, *, plan: OrderPlan | None) -> None:
    rng = life.rng
    sid = life.numbers.next("session")
    ids = {"app_install_id": install, "email": life.p.email}
    life.emit(t, "page.viewed", "app", ids, {"url": "app://home", "title": "Home", "session_id": sid})
    for _ in range(rng.randint(1, 4)):
        t += rng.uniform(5, 90)
        product = _product(life)
        life.emit(
            t,
            "product.viewed",
            "app",
            dict(ids),
            {
                "sku": product.sku,
                "name": product.name,
                "url": f"app://product/{product.sku}",
                "price": life.price(product),
                "session_id": sid,
            },
        )
    if plan is not None:
        place_order(life, t + rng.uniform(20, 120), plan, app_install=install)


def online(life: Life, plans: list[OrderPlan]) -> None:
    """Website and app sessions in the order they happen; some end in an order."""
    p, rng = life.p, life.rng
    web: list[tuple[float, OrderPlan | None]] = [(t, None) for t in life.times(0.65 * p.activity)]
    if p.is_new:  # looking around before signing up
        web += [(t, None) for t in life.times(2.0, max(life.start, p.since - 25 * DAY), p.since)]
    app: list[tuple[float, OrderPlan | None]] = []
    if p.app_installs:
        app = [(t, None) for t in life.times(0.8 * p.activity)]
    for order in plans:
        (app if order.channel == "app" else web).append((order.t, order))
    # Move each session to a likely hour first, then live them in order (logins depend on it).
    web = [(life.clock(t, LEISURE, not_before=p.since if plan else min(t, p.since)), plan) for t, plan in web]
    app = [(life.clock(t, LEISURE), plan) for t, plan in app]
    for t, plan in sorted(web, key=lambda item: item[0]):
        cookie = p.cookies[1] if len(p.cookies) > 1 and rng.random() < 0.35 else p.cookies[0]
        _web_session(life, t, cookie, plan=plan)
    for t, plan in sorted(app, key=lambda item: item[0]):
        install = p.app_installs[-1] if len(p.app_installs) > 1 and rng.random() < 0.4 else p.app_installs[0]
        _app_session(life, t, install, plan=plan)
