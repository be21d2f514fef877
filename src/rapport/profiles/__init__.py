"""The 360° view: golden record, timeline, accounts, orders with versions, cases and devices."""
