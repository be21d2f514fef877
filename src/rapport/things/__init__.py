"""Things: connected products (device registry, twins, telemetry) and stores (presence, visits).

Domain code only; the MQTT transport that feeds it lives in :mod:`rapport.mqtt`.
"""
