"""splash_core: move beamline data safely, process it on HPC, catalogue, archive and prune it."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
