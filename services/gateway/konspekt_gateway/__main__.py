from konspekt_gateway.main import main

raise SystemExit(main())
