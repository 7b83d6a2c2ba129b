from modeldeck.cli.main import main

raise SystemExit(main())
