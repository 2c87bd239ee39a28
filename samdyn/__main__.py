"""``python -m samdyn`` runs the ``samdyn`` command."""

import sys

from .cli import main

sys.exit(main())
