"""Generators of the deployment artifacts: Prometheus rules and the Kubernetes PrometheusRule."""
