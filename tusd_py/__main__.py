import sys

from tusd_py.server.cli import main

if __name__ == "__main__":  # not when multiprocessing's spawn imports the parent's main module
    sys.exit(main())
