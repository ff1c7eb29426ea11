"""python -m qingsuan: the same as the qingsuan command."""

from qingsuan.cli import main

main()
