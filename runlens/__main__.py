"""``python -m runlens``: the same as the ``runlens`` command."""

from runlens.cli import main

if __name__ == "__main__":
    main()
