"""``python -m prosodia``: the same as the ``prosodia-py`` command."""

from prosodia.cli import main

raise SystemExit(main())
