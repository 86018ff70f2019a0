"""SDK-side data helpers: load an MLTable folder into pandas, check one without reading it.

pandas, pyarrow and numpy are optional (``pip install 'mill[examples]'``) and imported only
when a table is loaded. This package depends on :mod:`mill.specs` and :mod:`mill.errors`
only.
"""

from .mltable import load_mltable, validate_mltable
from .readers import PATH_COLUMN

__all__ = ["PATH_COLUMN", "load_mltable", "validate_mltable"]
