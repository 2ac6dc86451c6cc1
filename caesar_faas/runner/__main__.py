"""`python -m caesar_faas.runner`: the job entrypoint every backend starts (see contract.py)."""

import sys

from .main import main

sys.exit(main())
