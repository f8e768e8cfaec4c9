"""Many runs from one command: jobs side by side (``parallel``), seeds trained as one computation (``vectorized``),
and the line and exit code a multirun ends with (``report``)."""
