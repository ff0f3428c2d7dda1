"""veza-synthetics: the Veza troubleshooting guide as a synthetic monitoring suite."""

__version__ = "0.1.0"
