"""The command line: arguments, the commands, the demo and the health check."""
