"""``python scripts/reproduce [options]`` (or ``python -m reproduce`` with ``scripts`` on the path)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a folder: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from reproduce import main
else:
    from . import main

if __name__ == "__main__":
    sys.exit(main())
