"""`python -m exporter` runs the command line."""

from exporter.arguments import main

raise SystemExit(main())
