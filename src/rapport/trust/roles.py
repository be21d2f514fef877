"""Roles and what each may do. The API checks a route's permission against this table, nothing else.

| permission        | allows                                          | ingest | agent | analyst | admin |
| ----------------- | ----------------------------------------------- | ------ | ----- | ------- | ----- |
| events:write      | send events (`POST /v1/events`)                 | yes    | yes   |         | yes   |
| reference:read    | read catalog, identifier kinds, device models   | yes    | yes   | yes     | yes   |
| profiles:read     | profiles, timelines, orders, consents, devices  |        | yes   | yes (*) | yes   |
| profiles:contact  | act on a person (a message, subject to consent) |        | yes   |         | yes   |
| personal:read     | see contact details and other personal fields   |        | yes   |         | yes   |
| identity:review   | merges, undo, identifier clashes                |        |       |         | yes   |
| quarantine:manage | read and replay the quarantine                  |        |       |         | yes   |
| subjects:rights   | export and erase a person                       |        |       |         | yes   |
| catalog:write     | add event types, kinds; set device models       |        |       |         | yes   |
| keys:manage       | create, list and revoke keys                    |        |       |         | yes   |
| audit:read        | read the audit log                              |        |       |         | yes   |

(*) an analyst sees profiles with personal fields and identifier values masked.

Stores: listing them needs reference:read; registering one needs catalog:write, since like an event type
it changes what the ingest accepts; a store's figures (no person named) and a customer's visits need
profiles:read.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    INGEST = "ingest"
    AGENT = "agent"
    ANALYST = "analyst"
    ADMIN = "admin"


class Permission(StrEnum):
    EVENTS_WRITE = "events:write"
    REFERENCE_READ = "reference:read"
    PROFILES_READ = "profiles:read"
    PROFILES_CONTACT = "profiles:contact"
    PERSONAL_READ = "personal:read"
    IDENTITY_REVIEW = "identity:review"
    QUARANTINE_MANAGE = "quarantine:manage"
    SUBJECT_RIGHTS = "subjects:rights"
    CATALOG_WRITE = "catalog:write"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.INGEST: frozenset({P.EVENTS_WRITE, P.REFERENCE_READ}),
    Role.AGENT: frozenset(
        {P.EVENTS_WRITE, P.REFERENCE_READ, P.PROFILES_READ, P.PROFILES_CONTACT, P.PERSONAL_READ}
    ),
    Role.ANALYST: frozenset({P.REFERENCE_READ, P.PROFILES_READ}),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: Role, permission: Permission) -> bool:
    """May a key of ``role`` do what ``permission`` names?"""
    return permission in PERMISSIONS[role]
