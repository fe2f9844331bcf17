"""`python -m ii2v_jax.convert`: see `converter.main`."""

import sys

from ii2v_jax.convert import converter

sys.exit(converter.main())
