"""`python -m workers.cli` runs the `likeness` command."""
import sys

from workers.cli.main import main

sys.exit(main())
