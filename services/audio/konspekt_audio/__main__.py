from konspekt_audio.main import main

raise SystemExit(main())
