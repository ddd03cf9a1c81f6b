import sys

from tusd_py.cli import main

sys.exit(main())
