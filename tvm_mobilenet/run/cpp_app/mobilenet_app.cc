// Example app: load a tvm_mobilenet .so with the TVM runtime, run one input, print the top-5 classes.
//
//   ./mobilenet_app MODEL.so [INPUT.npy | INPUT.raw] [OUTPUT.raw] [--repeat N]
//
// The module says its input (`input_shape`, `input_dtype`): float32 for float models, int8 for
// full-integer model files. INPUT is a C-ordered .npy of that dtype and shape, or a raw little-endian
// file of it (without one, the app runs a constant image: 0.5, or 0 for int8). OUTPUT, if given,
// receives the output as raw values of its dtype (probabilities for float models, the quantized
// softmax for int8 ones). With --repeat N, the app then times N more calls on the same input, back to
// back as a camera app makes them, and prints their median, min and max latency on stderr.
// Needs libtvm_runtime.so and libtvm_ffi.so at run time (next to the app, see `python -m tvm_mobilenet.bundle`).
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1+
#endif

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

// An element type the app feeds or reads: its DLPack type, .npy descr and name.
struct DType {
  DLDataType dl;
  const char* descr;
  const char* name;
  size_t bytes() const { return dl.bits / 8; }
};
const DType kFloat32{{kDLFloat, 32, 1}, "'<f4'", "float32"};
const DType kInt8{{kDLInt, 8, 1}, "'|i1'", "int8"};

// The input dtype the module reports (modules built before it reported one take float32).
DType InputDType(ffi::Module& vm) {
  auto reported = vm->GetFunction("input_dtype");
  if (!reported.has_value()) return kFloat32;
  std::string name = reported.value()().cast<ffi::String>();
  if (name == "float32") return kFloat32;
  if (name == "int8") return kInt8;
  throw std::runtime_error("the module takes a " + name + " input, which this app does not feed");
}

// The payload of a .npy (C order, little-endian) or of a raw file: `count` values of `dtype`.
std::vector<char> ReadInput(const std::string& path, size_t count, const DType& dtype) {
  std::vector<char> bytes = ReadFile(path);
  size_t offset = 0;
  if (bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0) {
    int major = bytes[6];
    size_t header_len = major == 1 ? (uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8)
                                   : (uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8 | uint8_t(bytes[10]) << 16 |
                                      uint32_t(uint8_t(bytes[11])) << 24);
    offset = (major == 1 ? 10 : 12) + header_len;
    std::string header(bytes.data() + (major == 1 ? 10 : 12), header_len);
    if (header.find(dtype.descr) == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
      throw std::runtime_error(path + ": need a C-ordered " + dtype.name + " array (the module's input)");
  }
  if (bytes.size() - offset != count * dtype.bytes())
    throw std::runtime_error(path + ": expected " + std::to_string(count) + " " + dtype.name + " values");
  return std::vector<char>(bytes.begin() + offset, bytes.end());
}

std::vector<char> ConstantInput(size_t count, const DType& dtype) {
  std::vector<char> values(count * dtype.bytes(), 0);
  if (dtype.dl.code == kDLFloat) std::fill_n(reinterpret_cast<float*>(values.data()), count, 0.5f);
  return values;
}

// The first row of the output as doubles (float32 probabilities or int8 quantized ones).
std::vector<double> FirstRow(const ffi::Tensor& output) {
  int64_t classes = output.shape()[output.ndim() - 1];
  std::vector<double> row(classes);
  DLDataType type = output.dtype();
  for (int64_t i = 0; i < classes; ++i) {
    if (type.code == kDLFloat && type.bits == 32) {
      row[i] = static_cast<const float*>(output.data_ptr())[i];
    } else if (type.code == kDLInt && type.bits == 8) {
      row[i] = static_cast<const int8_t*>(output.data_ptr())[i];
    } else {
      throw std::runtime_error("the module's output is neither float32 nor int8");
    }
  }
  return row;
}

// The CPUs this process may run on (its affinity mask), as `tvm_mobilenet/run/threads.py` counts.
int AvailableCores() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return CPU_COUNT(&cpus);
  return 1;
}

// Private writable anonymous mappings (malloc's heap and mmaps), as [start, end).
using Ranges = std::vector<std::pair<uintptr_t, uintptr_t>>;
Ranges AnonymousMemory() {
  Ranges found;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start, end;
    char perms[5] = {0}, name[256] = {0};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s %*s %*s %*s %255s", &start, &end, perms, name) < 3) continue;
    if (perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p' && (!name[0] || !std::strcmp(name, "[heap]")))
      found.emplace_back(start, end);
  }
  return found;
}

// Ask for 2 MB pages on the memory mapped since `before`: the model's weights and activation pool
// (tvm_mobilenet/run/huge_pages.py says why: ~1.5 % faster at 1 thread on a Zen 4). Returns the bytes advised.
size_t AdviseHugePages(const Ranges& before) {
  const char* setting = std::getenv("TVM_MOBILENET_HUGE_PAGES");
  if (setting && std::string(setting) == "0") return 0;
  constexpr uintptr_t kHuge = 2u << 20;
  size_t advised = 0;
  auto advise = [&](uintptr_t start, uintptr_t end) {
    uintptr_t first = (start + kHuge - 1) / kHuge * kHuge, last = end / kHuge * kHuge;
    if (last <= first || madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE) != 0) return;
    advised += last - first;
    madvise(reinterpret_cast<void*>(first), last - first, MADV_COLLAPSE);  // refused: the kernel's scan
  };
  for (auto [start, end] : AnonymousMemory()) {  // the parts of each mapping not in `before`
    for (auto [old_start, old_end] : before) {
      if (old_end <= start || old_start >= end) continue;
      if (old_start > start) advise(start, old_start);
      start = std::max(start, old_end);
      if (start >= end) break;
    }
    if (start < end) advise(start, end);
  }
  return advised;
}

// The command line: up to three files (model, input, output) and `--repeat N` anywhere.
struct Args {
  std::vector<std::string> files;
  long repeat = 0;
};

bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--repeat") {
      if (i + 1 == argc) return false;
      char* end = nullptr;
      args.repeat = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || args.repeat < 1) return false;
    } else if (arg.rfind("--", 0) == 0) {
      return false;
    } else {
      args.files.push_back(arg);
    }
  }
  return !args.files.empty() && args.files.size() <= 3;
}

// `repeat` calls of `main` on `data`, timed one by one; prints median, min and max in ms.
void TimeCalls(ffi::Function& main_fn, const ffi::Tensor& data, long repeat) {
  std::vector<double> ms;
  for (long i = 0; i < repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    main_fn(data);
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    ms.push_back(took.count());
  }
  std::sort(ms.begin(), ms.end());
  size_t n = ms.size();
  double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  std::fprintf(stderr, "latency: median %.3f ms, min %.3f, max %.3f over %ld calls\n", median,
               ms.front(), ms.back(), repeat);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, args)) {
    std::fprintf(stderr, "usage: %s MODEL.so [INPUT.npy|INPUT.raw] [OUTPUT.raw] [--repeat N]\n",
                 argv[0]);
    return 2;
  }
  // TVM's workers spin ~0.25 s after each kernel before they sleep: a core busy long after every
  // call. 1000 spins (~1 ms) cost no latency and leave the CPU idle between frames (measured in
  // tvm_mobilenet/run/threads.py); an explicit TVM_THREAD_POOL_SPIN_COUNT is kept.
  setenv("TVM_THREAD_POOL_SPIN_COUNT", "1000", /*overwrite=*/0);
  // TVM's pool takes half the cores on x86 (it assumes hyper-threading): an app wants every core
  // it may run on, as `tvm-mobilenet run` has them; an explicit TVM_NUM_THREADS is kept.
  setenv("TVM_NUM_THREADS", std::to_string(AvailableCores()).c_str(), /*overwrite=*/0);
  std::fprintf(stderr, "threads: %s\n", std::getenv("TVM_NUM_THREADS"));
  try {
    // Step 1. The exported library holds a relax VM executable; start a VM on the CPU.
    Ranges before = AnonymousMemory();
    std::string model = args.files[0];
    if (model.find('/') == std::string::npos) model = "./" + model;  // dlopen searches no cwd otherwise
    ffi::Module lib = ffi::Module::LoadFromFile(model);
    ffi::Module vm = lib->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
    vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator);
    // Step 2. The input, as the module says (tvm_mobilenet adds `input_shape` and `input_dtype`).
    ffi::Shape shape = vm->GetFunction("input_shape").value()().cast<ffi::Shape>();
    DType dtype = InputDType(vm);
    size_t count = static_cast<size_t>(shape.Product());
    std::vector<char> input =
        args.files.size() > 1 ? ReadInput(args.files[1], count, dtype) : ConstantInput(count, dtype);
    DLDevice cpu{kDLCPU, 0};
    ffi::Tensor data = ffi::Tensor::FromNDAlloc(CPUAlloc(), shape, dtype.dl, cpu);
    std::memcpy(data.data_ptr(), input.data(), input.size());
    // Step 3. Run and rank the classes of the first image.
    ffi::Function main_fn = vm->GetFunction("main").value();
    ffi::Tensor output = main_fn(data).cast<ffi::Tensor>();
    // After the first call (it allocates the activation pool): the model's memory onto huge pages,
    // for the calls an app makes next.
    std::fprintf(stderr, "huge pages: %zu MiB\n", AdviseHugePages(before) >> 20);
    std::vector<double> row = FirstRow(output);
    std::vector<int64_t> order(row.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    bool quantized = output.dtype().code == kDLInt;  // int8: the quantized softmax, printed as is
    for (int rank = 0; rank < 5; ++rank) {
      long long cls = static_cast<long long>(order[rank]);
      if (quantized) {
        std::printf("top%d: class %4lld  q=%d\n", rank + 1, cls, static_cast<int>(row[order[rank]]));
      } else {
        std::printf("top%d: class %4lld  p=%.6f\n", rank + 1, cls, row[order[rank]]);
      }
    }
    if (args.files.size() > 2) {
      std::ofstream out(args.files[2], std::ios::binary);
      size_t size = static_cast<size_t>(output.numel()) * (output.dtype().bits / 8);
      out.write(static_cast<const char*>(output.data_ptr()), static_cast<std::streamsize>(size));
    }
    if (args.repeat) TimeCalls(main_fn, data, args.repeat);
  } catch (const std::exception& err) {
    std::fprintf(stderr, "error: %s\n", err.what());
    return 1;
  }
  return 0;
}
