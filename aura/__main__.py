"""`python -m aura` and the entry point of aura.pyz."""

from aura.cli.app import main

if __name__ == "__main__":
    main()
