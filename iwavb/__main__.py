import os
import sys

from .cli import main

try:
    status = main()
    sys.stdout.flush()  # inside the try: a closed pipe shows here, not at the interpreter's exit
except BrokenPipeError:  # the output went to `head` or the like, which stopped reading: not an error
    # Python's documented recipe: point stdout at devnull so that the interpreter's final flush is silent.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 1
sys.exit(status)
