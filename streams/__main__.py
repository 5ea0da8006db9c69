"""``python -m streams``: run the Faust worker (agent + stats web views)."""

from __future__ import annotations

import sys


def main() -> None:
    from streams.app import create_app

    app = create_app()

    # Faust's CLI reads sys.argv; extra arguments pass through (e.g. -l info).
    sys.argv = [sys.argv[0], "worker", "-l", "warn", *sys.argv[1:]]
    app.main()


if __name__ == "__main__":
    main()
