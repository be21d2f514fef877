"""The MQTT transport: topics and payloads in, envelopes through the ingest pipeline, acknowledged once
committed."""
