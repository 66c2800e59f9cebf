"""The compile stage: best records (template defaults elsewhere) -> a verified .so, cross-compiled
for devices; and the OpenCL kernel check. `api.compile_model` and `verify.verify_kernels` are the
commands' plain functions."""
