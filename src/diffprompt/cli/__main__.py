"""``python -m diffprompt.cli``."""

from diffprompt.cli import main

main()
