import os
import sys

from .cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # the output went to `head` or the like, which stopped reading: not an error
    # Python's documented recipe: point stdout at devnull so that the interpreter's final flush is silent.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)
