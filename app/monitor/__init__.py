"""The runtime monitor: one watcher per Docker engine follows its events for DONE
applications, records incidents and hands APP_DOWN, HEALTH_CHECK_FAILED and RECOVERED on."""
