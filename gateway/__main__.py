"""`python -m gateway` is `campusgate`."""

from gateway.cli import main

main()
