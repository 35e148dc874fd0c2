"""`python -m torchgrade`: the same as the `torchgrade` command."""

import sys

from torchgrade.cli import main

sys.exit(main())
