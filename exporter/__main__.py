"""`python -m exporter` runs the command line."""

from exporter.cli.main import main

raise SystemExit(main())
