"""The Fluentd forward-protocol receiver: protocol (pure), records (pure), ingest (database), server (asyncio)."""
