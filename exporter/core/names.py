"""Names the command line needs before anything heavy is imported: variables and the port.

Kept free of imports so ``--version`` and ``--help`` answer without loading the server.
"""

ENV_PREFIX = "SESSION_EXPORTER_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
TARGETS_ENV = ENV_PREFIX + "TARGETS"
WEB_CONFIG_ENV = ENV_PREFIX + "WEB_CONFIG_FILE"
POD_NAME_ENV = "POD_NAME"
DEFAULT_PORT = 9864
READ_HEADER_TIMEOUT = 15.0
"""Default of ``--web.read-header-timeout``: how long a connection may take to send a
request's headers (and, as keep-alive timeout, how long it may stay idle between requests)."""
MAX_CONNECTIONS = 512
"""Default of ``--web.max-connections``: open client connections at most."""
