from konspekt_asr.main import main

raise SystemExit(main())
