"""Self-service settings (issue 16): departments change the thresholds, intervals, rule switches and notifier
routes of their own uses at run time; the changes are validated as the config file is, kept in the store, audited,
and applied by the running detectors from their next batch (`holder.SettingsHolder`, `paths` for whose is what)."""
