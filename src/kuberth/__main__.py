"""Allow ``python -m kuberth``."""

from kuberth.cli import main

main()
