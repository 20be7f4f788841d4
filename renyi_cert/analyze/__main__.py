"""``python -m renyi_cert.analyze``: the ``renyi-analyze`` command."""

import sys

from .cli import main

sys.exit(main())
