"""``python -m gcnretrieval`` runs the command-line interface."""
from gcnretrieval.cli import main

if __name__ == "__main__":
    main()
