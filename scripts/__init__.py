"""System set-up scripts (apt packages, caches), run by `tvm-mobilenet setup NAME`."""
