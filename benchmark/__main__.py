"""`python -m benchmark` is the `benchmark` command."""
from benchmark.cli import main

main()
