"""`jobq dev`: Valkey, the server, the reference worker and an SMTP sink, run as one stack.

The stack (``stack.py``) starts each part in order and stops them in reverse; ``children.py``
runs the server and worker as child processes whose output is prefixed and forwarded;
``mailsink.py`` keeps every message it receives as an .eml file; ``sample.py`` writes the
sample image and the tutorial's commands.
"""

# Here, not in stack.py: `jobq --help` and the producer commands import this package's
# defaults without loading the stack's dependencies (redis, aiosmtpd, Pillow).
DEFAULT_PORT = 50051
DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8080
DEFAULT_METRICS_PORT = 9464  # the port Prometheus exporters of applications commonly take
