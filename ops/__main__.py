"""`python -m ops` is the `platform` command."""
import sys

from ops.cli import main

sys.exit(main())
