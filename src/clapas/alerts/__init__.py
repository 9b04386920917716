"""Alerts: the persistent lifecycle of what detectors find, and the notifications that reach people.

Flow: `DetectorRunner` (on the committed stream) → `PersistentAlerts.handle` (the `AlertSink`: each transition is
written with its history and one outbox row per notifier, in one store transaction) → `OutboxWorker` (in the
service's loop: delivers due rows through `notifiers/`, retries with exponential backoff, keeps a row as dead after
the last attempt). Ingestion never waits for a notifier, and a notification is never lost: it is in the store
before anyone tries to send it. `wiring.build_alerting` puts the pieces together for `clapas run` and `clapas demo`.
"""
