"""``python -m tuner``: the same command line as ``tuner``."""

from tuner.cli import main

if __name__ == "__main__":
    main()
