"""The only trio code: listeners, the upstream transport, and the driver of resolutions."""
