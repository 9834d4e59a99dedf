"""The Grafana dashboard of session-exporter, built from Python (see ``grafana.dashboard``)."""
