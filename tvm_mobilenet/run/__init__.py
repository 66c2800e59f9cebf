"""The run stage: what an app does with a compiled .so (runtime-only load, remote run over RPC) and
the bundle shipped with the C++ app (cpp_app/).

Nothing here imports tvm at import time: `run` proves a .so needs only the TVM runtime."""
