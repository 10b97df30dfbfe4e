import sys

from vcci_nb.cli import main

sys.exit(main())
