// Example app: load a tvm_mobilenet .so with the TVM runtime, run one input, print the top-5 classes.
//
//   ./mobilenet_app MODEL.so [INPUT.npy | INPUT.f32] [OUTPUT.f32]
//
// INPUT is an NCHW float32 .npy or a raw little-endian float32 file of the model's input shape (without one,
// the app runs a constant 0.5 image). OUTPUT, if given, receives the probabilities as raw float32.
// Needs libtvm_runtime.so and libtvm_ffi.so at run time (next to the app, see `python -m tvm_mobilenet.bundle`).
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

constexpr int kPooledAllocator = 2;  // the relax VM's memory pool, as Python's VirtualMachine uses
constexpr size_t kAlignment = 64;    // TVM's kernels assume 64-byte aligned tensors (vector loads)

struct CPUAlloc {
  void AllocData(DLTensor* tensor) {
    size_t size = (ffi::GetDataSize(*tensor) + kAlignment - 1) / kAlignment * kAlignment;
    tensor->data = std::aligned_alloc(kAlignment, size);
  }
  void FreeData(DLTensor* tensor) { std::free(tensor->data); }
};

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The float32 payload of a .npy (C order, little-endian) or of a raw file.
std::vector<float> ReadInput(const std::string& path, size_t count) {
  std::vector<char> bytes = ReadFile(path);
  size_t offset = 0;
  if (bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0) {
    int major = bytes[6];
    size_t header_len = major == 1 ? (uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8)
                                   : (uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8 | uint8_t(bytes[10]) << 16 |
                                      uint32_t(uint8_t(bytes[11])) << 24);
    offset = (major == 1 ? 10 : 12) + header_len;
    std::string header(bytes.data() + (major == 1 ? 10 : 12), header_len);
    if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
      throw std::runtime_error(path + ": need a C-ordered float32 array");
  }
  if (bytes.size() - offset != count * sizeof(float))
    throw std::runtime_error(path + ": expected " + std::to_string(count) + " float32 values");
  std::vector<float> values(count);
  std::memcpy(values.data(), bytes.data() + offset, count * sizeof(float));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.so [INPUT.npy|INPUT.f32] [OUTPUT.f32]\n", argv[0]);
    return 2;
  }
  try {
    // Step 1. The exported library holds a relax VM executable; start a VM on the CPU.
    std::string model = argv[1];
    if (model.find('/') == std::string::npos) model = "./" + model;  // dlopen searches no cwd otherwise
    ffi::Module lib = ffi::Module::LoadFromFile(model);
    ffi::Module vm = lib->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
    vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator);
    // Step 2. The input, shaped as the module says (tvm_mobilenet adds an `input_shape` function).
    ffi::Shape shape = vm->GetFunction("input_shape").value()().cast<ffi::Shape>();
    size_t count = static_cast<size_t>(shape.Product());
    std::vector<float> input = argc > 2 ? ReadInput(argv[2], count) : std::vector<float>(count, 0.5f);
    DLDevice cpu{kDLCPU, 0};
    ffi::Tensor data = ffi::Tensor::FromNDAlloc(CPUAlloc(), shape, DLDataType{kDLFloat, 32, 1}, cpu);
    std::memcpy(data.data_ptr(), input.data(), count * sizeof(float));
    // Step 3. Run and rank the classes of the first image.
    ffi::Tensor probs = vm->GetFunction("main").value()(data).cast<ffi::Tensor>();
    const float* p = static_cast<const float*>(probs.data_ptr());
    int64_t classes = probs.shape()[probs.ndim() - 1];
    std::vector<int64_t> order(classes);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    for (int rank = 0; rank < 5; ++rank) {
      std::printf("top%d: class %4lld  p=%.6f\n", rank + 1, static_cast<long long>(order[rank]), p[order[rank]]);
    }
    if (argc > 3) {
      std::ofstream out(argv[3], std::ios::binary);
      out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(probs.numel() * sizeof(float)));
    }
  } catch (const std::exception& err) {
    std::fprintf(stderr, "error: %s\n", err.what());
    return 1;
  }
  return 0;
}
