"""Code that runs inside job and replica processes, in the user's environment: standard
library only, so it starts in any Python (see :mod:`mill.runtime.bootstrap`)."""
