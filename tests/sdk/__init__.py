"""SDK contract tests: the providers' official SDKs, as clients of the project's simulators."""
