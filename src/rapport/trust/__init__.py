"""Trust: API keys and roles, the consent ledger, data-subject export and erasure, the audit trail."""
