"""Run a model N times in one system; a script for the emulated aarch64 python (instructions.py).

    python3 guest_infer.py SYSTEM MODEL_FILE INPUT.npy RUNS OUTPUT.npy [MAPS_OUT]
    SYSTEM: tvm (our .so, TVM runtime) | tflite (LiteRT + XNNPACK) | onnxruntime

Imports only the system's own runtime and numpy, loads the model, calls it RUNS times on the input
(RUNS may be 0: load only), saves the last output, and with MAPS_OUT copies /proc/self/maps there
(which file each code address belongs to). Instruction counts of runs with N and N+k inferences
differ by exactly k inferences: start-up, loading and warm-up cancel out. One thread everywhere:
the counting plugin's per-block add is not atomic.
"""

import sys

import numpy as np


def tvm_runner(path, data):
    import tvm  # runtime only: the caller sets TVM_USE_RUNTIME_LIB=1 and TVM_NUM_THREADS=1
    import tvm.runtime.vm

    vm = tvm.runtime.vm.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
    tensor, main = tvm.runtime.tensor(data, tvm.cpu()), vm["main"]
    return lambda: main(tensor).numpy()


def tflite_runner(path, data):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)  # XNNPACK is its default delegate
    interpreter.allocate_tensors()
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(source["index"], data)

    def infer():
        interpreter.invoke()
        return interpreter.get_tensor(result["index"])

    return infer


def onnxruntime_runner(path, data):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: data}
    return lambda: session.run(None, feed)[0]


RUNNERS = {"tvm": tvm_runner, "tflite": tflite_runner, "onnxruntime": onnxruntime_runner}


def main(argv):
    system, model, input_file, runs, output_file = argv[:5]
    infer = RUNNERS[system](model, np.load(input_file))
    output = None
    for _ in range(int(runs)):
        output = infer()
    if output is not None:
        np.save(output_file, np.asarray(output))
    if len(argv) > 5:
        with open("/proc/self/maps") as maps, open(argv[5], "w") as out:
            out.write(maps.read())


if __name__ == "__main__":
    main(sys.argv[1:])
