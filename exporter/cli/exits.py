"""The exit codes every command shares."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
