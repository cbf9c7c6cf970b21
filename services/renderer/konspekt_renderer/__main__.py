from konspekt_renderer.main import main

raise SystemExit(main())
