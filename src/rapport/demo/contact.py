"""Conversations: newsletters, questions by email, chat and phone, support cases, social posts, surveys."""

from __future__ import annotations

from rapport.demo.commerce import feedback
from rapport.demo.life import DAY, HOUR, LEISURE, MINUTE, OFFICE, Life
from rapport.demo.sink import Data
from rapport.demo.vocab import AGENTS, CASE_TOPICS, NEWSLETTERS, PRODUCTS, RESOLUTIONS, SOCIAL_POSTS

_QUESTIONS = (
    ("Opening hours", "What time does the {city} store open on Sunday?"),
    ("Click and collect", "Can I collect my order from the {city} store?"),
    ("Size guide", "Do your boots come up small?"),
    ("Warranty", "How long is the warranty on washing machines?"),
    ("Delivery charge", "Why was I charged for delivery this time?"),
)


def newsletters(life: Life) -> None:
    if life.marketing_from is None:
        return
    for t in life.times(2.0, life.marketing_from, life.marketing_until):
        data: Data = {
            "channel": "email",
            "message_id": life.numbers.next("message"),
            "subject": life.rng.choice(NEWSLETTERS),
        }
        life.emit(
            life.clock(t, OFFICE, not_before=life.marketing_from),
            "message.sent",
            "mailer",
            {"email": life.p.email},
            data,
        )


def _ids_for(life: Life, channel: str) -> dict[str, str]:
    p = life.p
    if channel == "phone":
        return {"phone": life.phone()}
    if channel == "social" and p.twitter is not None:
        return {"twitter": p.twitter}
    if channel == "chat" and life.rng.random() < 0.4:
        return {"cookie_id": p.cookies[0]}
    if channel == "email" and p.customer_id is not None and life.rng.random() < 0.5:
        return life.customer_ids()
    return {"email": p.email}


def _message(life: Life, t: float, direction: str, channel: str, ids: dict[str, str], data: Data) -> None:
    full: Data = {"channel": channel, "message_id": life.numbers.next("message"), **data}
    life.emit(t, f"message.{direction}", "contact-centre", dict(ids), full)


def enquiries(life: Life) -> None:
    """Quick questions answered on the spot or by return, and phone calls either way."""
    p, rng = life.p, life.rng
    city = life.stores[p.home_store - 1].city
    for t in life.times(0.12 * p.activity):
        t = life.clock(t, OFFICE)
        channel = rng.choices(("email", "chat", "phone"), weights=(4, 3, 3))[0]
        ids = _ids_for(life, channel)
        subject, body = rng.choice(_QUESTIONS)
        agent = rng.choice(AGENTS)
        if channel == "phone":
            direction = "received" if rng.random() < 0.75 else "sent"
            call: Data = {"subject": f"Call: {subject.lower()}", "duration_s": round(rng.uniform(40, 900))}
            _message(life, t, direction, "phone", ids, {**call, "agent": agent})
            continue
        thread = life.numbers.next("thread")
        question: Data = {"thread_id": thread, "subject": subject, "body": body.format(city=city)}
        _message(life, t, "received", channel, ids, question)
        answer: Data = {
            "thread_id": thread,
            "subject": f"Re: {subject}",
            "body": "Thanks for asking! ...",
            "agent": agent,
        }
        reply_after = rng.uniform(MINUTE, 4 * MINUTE) if channel == "chat" else rng.uniform(HOUR, 2 * DAY)
        _message(life, t + reply_after, "sent", channel, ids, answer)


def _case_kind(life: Life, t: float) -> str:
    kinds = ["complaint", "question", "return", "other"]
    weights = [35, 30, 20, 5]
    if any(registered < t for registered, _, _ in life.owned):
        kinds.append("service_outage")
        weights.append(40)
    return life.rng.choices(kinds, weights=weights)[0]


def cases(life: Life) -> None:
    """Problems tracked from first contact to resolution, with the conversation in between."""
    p, rng = life.p, life.rng
    for t in life.times(0.07 * p.activity + 0.05 * len(p.devices)):
        t = life.clock(t, LEISURE)
        kind = _case_kind(life, t)
        earlier = [o for o in life.orders if o[0] < t]
        item, order = rng.choice(PRODUCTS).name, "my last order"
        if kind == "service_outage":
            item = rng.choice([model for registered, _, model in life.owned if registered < t])
        elif earlier:
            _, order, item = rng.choice(earlier[-3:])
        subject, description = rng.choice(CASE_TOPICS[kind])
        channels = ["email", "phone", "chat"] + (["social"] if p.twitter is not None else [])
        channel = rng.choice(channels)
        ids = _ids_for(life, channel)
        case_id = life.numbers.next("case")
        priority = (
            "urgent"
            if kind == "service_outage" and rng.random() < 0.4
            else rng.choice(("low", "normal", "normal", "high"))
        )
        opened: Data = {
            "case_id": case_id,
            "kind": kind,
            "subject": subject,
            "description": description.format(item=item, order=order),
            "priority": priority,
            "channel": channel,
        }
        if not life.emit(t, "case.opened", "contact-centre", dict(ids), opened):
            continue
        # Calls are followed up in writing.
        follow_up = "email" if channel == "phone" else channel
        follow_ids = _ids_for(life, follow_up) if follow_up != channel else ids
        thread, agent = life.numbers.next("thread"), rng.choice(AGENTS)
        staff_ids = life.account_ids() if p.customer_id is not None else dict(ids)
        for step in range(rng.randint(1, 3)):
            t = life.clock(t + rng.uniform(30 * MINUTE, 2 * DAY), OFFICE, not_before=t)
            _message(
                life,
                t,
                "sent",
                follow_up,
                follow_ids,
                {
                    "thread_id": thread,
                    "case_id": case_id,
                    "agent": agent,
                    "body": "Sorry to hear that. Could you send a photo?" if step == 0 else "Any news?",
                },
            )
            if rng.random() < 0.7:
                t += rng.uniform(10 * MINUTE, DAY)
                _message(
                    life,
                    t,
                    "received",
                    follow_up,
                    follow_ids,
                    {"thread_id": thread, "case_id": case_id, "body": "Here you go, see attached."},
                )
        for status in rng.sample(("in_progress", "pending", "waiting_on_customer"), rng.randint(1, 2)):
            t = life.clock(t + rng.uniform(HOUR, 3 * DAY), OFFICE, not_before=t)
            update: Data = {"case_id": case_id, "status": status, "assignee": agent}
            if rng.random() < 0.3:
                update["note"] = f"Customer says the {item} is still not right."
            life.emit(t, "case.updated", "crm", dict(staff_ids), update)
        if rng.random() < 0.85:
            t = life.clock(t + rng.uniform(HOUR, 10 * DAY), OFFICE, not_before=t)
            closed: Data = {"case_id": case_id, "resolution": rng.choice(RESOLUTIONS)}
            if life.emit(t, "case.closed", "crm", dict(staff_ids), closed) and rng.random() < 0.4:
                feedback(
                    life,
                    t + rng.uniform(HOUR, 2 * DAY),
                    order_id=None,
                    topic="support",
                    channel=channel if channel != "social" else "email",
                )


def social(life: Life) -> None:
    p, rng = life.p, life.rng
    city = life.stores[p.home_store - 1].city
    networks = [("twitter", p.twitter, 0.5), ("linkedin", p.linkedin, 0.1), ("facebook", p.facebook, 0.12)]
    for network, handle, rate in networks:
        if handle is None:
            continue
        for t in life.times(rate * p.activity, life.start, life.end):
            text, sentiment = rng.choice(SOCIAL_POSTS)
            item = rng.choice(life.viewed or list(PRODUCTS[:20])).name.split(",")[0]
            post_id = life.numbers.next("post")
            data: Data = {"network": network, "text": text.format(item=item, city=city), "post_id": post_id}
            if network == "twitter":
                data["url"] = f"https://twitter.com/{handle.lstrip('@')}/status/{post_id}"
                data["mentions"] = ["@RapportHome"]
            data["likes"] = int(rng.expovariate(0.2))
            data["shares"] = int(rng.expovariate(1.0))
            if rng.random() < 0.8:
                data["sentiment_hint"] = sentiment
            life.emit(
                life.clock(t, LEISURE, not_before=life.start),
                "social.posted",
                "social-listener",
                {network: handle},
                data,
            )


def surveys(life: Life) -> None:
    """The occasional Net Promoter survey, by email or at the till."""
    p, rng = life.p, life.rng
    if p.customer_id is not None and rng.random() < 0.15:
        feedback(
            life,
            life.clock(rng.uniform(p.since, life.end), LEISURE),
            order_id=None,
            topic="nps",
            channel="email",
        )
    if p.loyalty_id is not None and rng.random() < 0.05:
        store = life.stores[p.home_store - 1]
        data: Data = {"rating": rng.randint(2, 5), "topic": "store visit", "channel": "store"}
        life.emit(
            life.clock(rng.uniform(p.since, life.end), LEISURE),
            "feedback.submitted",
            store.pos_source,
            {"loyalty_id": p.loyalty_id},
            data,
        )
