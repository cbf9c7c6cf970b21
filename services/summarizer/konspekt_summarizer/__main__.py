from konspekt_summarizer.main import main

raise SystemExit(main())
