"""session-exporter: Prometheus metrics for AI agent, sandbox and cloud browser sessions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("session-exporter")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
