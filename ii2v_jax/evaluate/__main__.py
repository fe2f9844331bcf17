"""`python -m ii2v_jax.evaluate`: see `protocol.main`."""

import sys

from ii2v_jax.evaluate import protocol

sys.exit(protocol.main())
