"""``python -m konspekt_devstack``: run konspekt locally (what ``./dev run`` starts)."""

from konspekt_devstack.supervisor import main

raise SystemExit(main())
