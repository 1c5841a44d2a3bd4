// Data parallelism for dddit through LibTorch's own collectives (c10d): a TCPStore for the
// rendezvous and a ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL (CUDA tensors), as
// torch.distributed builds them for `init_process_group`. Compiled by dddit-core's build.rs
// with the `tch` feature; NCCL only where the build has the CUDA and NCCL headers.
//
// Same conventions as fused.cpp: tensors are `at::Tensor*` (tch's `C_tensor`), returned ones are
// owned by the caller; functions return 0 on success, 1 on error (message in
// dddit_dist_last_error()).
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DDDIT_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {
thread_local std::string dist_error;
using T = at::Tensor;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world;
  bool nccl;
};

void wait(const c10::intrusive_ptr<c10d::Work>& w) { w->wait(); }
}  // namespace

#define DIST_GUARD(...)                  \
  try {                                  \
    __VA_ARGS__;                         \
    return 0;                            \
  } catch (const std::exception& e) {    \
    dist_error = e.what();               \
    return 1;                            \
  }

extern "C" {

const char* dddit_dist_last_error() { return dist_error.c_str(); }

int dddit_dist_nccl_available() {
#ifdef DDDIT_NCCL
  return 1;
#else
  return 0;
#endif
}

// Joins the group `rank` of `world` at host:port (rank 0 serves the store), with the gloo
// backend (`nccl` = 0) or NCCL on CUDA device `cuda_device` (`nccl` = 1). Every collective of a
// rank that waits longer than timeout_ms fails instead of hanging.
int dddit_dist_new(const char* host, int port, int rank, int world, int nccl, int cuda_device, int64_t timeout_ms,
                   void** out) {
  DIST_GUARD({
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    auto g = new Group{store, {}, rank, world, nccl != 0};
    if (nccl) {
#ifdef DDDIT_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      at::globalContext().lazyInitDevice(at::kCUDA);
      g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
      (void)cuda_device;
#else
      delete g;
      throw std::runtime_error("this build of dddit has no NCCL (built without the CUDA/NCCL headers)");
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create();
      opts->timeout = timeout;
      // Loopback for a single host, else the interface of the host name (or GLOO_SOCKET_IFNAME),
      // as torch.distributed chooses.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != 0)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    }
    *out = g;
  })
}

void dddit_dist_free(void* g) { delete static_cast<Group*>(g); }

// The mean over ranks of n tensors (all on one device, any shapes): they are flattened into
// buckets of at most bucket_bytes (tensors of one dtype per bucket, in order), each bucket is
// summed across ranks (all buckets in flight at once, then waited for) and divided by the
// world size. Returns n new tensors of the input shapes; the inputs are not modified.
int dddit_dist_average(void* gp, T** ts, int64_t n, int64_t bucket_bytes, T** out) {
  DIST_GUARD({
    auto g = static_cast<Group*>(gp);
    std::vector<std::pair<int64_t, int64_t>> buckets;  // [begin, end) in ts
    int64_t begin = 0, bytes = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t b = ts[i]->numel() * ts[i]->element_size();
      bool other_dtype = i > begin && ts[i]->scalar_type() != ts[begin]->scalar_type();
      if (i > begin && (bytes + b > bucket_bytes || other_dtype)) {
        buckets.push_back({begin, i});
        begin = i;
        bytes = 0;
      }
      bytes += b;
    }
    if (n > begin) buckets.push_back({begin, n});
    std::vector<T> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto [b, e] : buckets) {
      std::vector<T> parts;
      for (int64_t i = b; i < e; ++i) parts.push_back(ts[i]->reshape({-1}));
      std::vector<T> flat{at::cat(parts)};
      works.push_back(g->backend->allreduce(flat));
      flats.push_back(flat[0]);
    }
    for (size_t k = 0; k < buckets.size(); ++k) {
      wait(works[k]);
      auto mean = flats[k].div_(static_cast<double>(g->world));
      int64_t off = 0;
      for (int64_t i = buckets[k].first; i < buckets[k].second; ++i) {
        int64_t m = ts[i]->numel();
        out[i] = new T(mean.narrow(0, off, m).view(ts[i]->sizes()));
        off += m;
      }
    }
  })
}

// Sums n doubles across ranks in place (losses, counts, flags), through a tensor on the
// group's device.
int dddit_dist_sum_f64(void* gp, double* values, int64_t n) {
  DIST_GUARD({
    auto g = static_cast<Group*>(gp);
    auto opts = at::TensorOptions().dtype(at::kDouble);
    auto host = at::from_blob(values, {n}, opts).clone();
    std::vector<T> v{g->nccl ? host.to(at::kCUDA) : host};
    wait(g->backend->allreduce(v));
    auto back = v[0].to(at::kCPU).contiguous();
    std::memcpy(values, back.data_ptr<double>(), sizeof(double) * n);
  })
}

// Every rank's tensor t (same shape on every rank) concatenated along dimension 0, rank order.
int dddit_dist_all_gather(void* gp, T* t, T** out) {
  DIST_GUARD({
    auto g = static_cast<Group*>(gp);
    std::vector<std::vector<T>> outs(1);
    for (int r = 0; r < g->world; ++r) outs[0].push_back(at::empty_like(*t));
    std::vector<T> in{t->contiguous()};
    wait(g->backend->allgather(outs, in));
    *out = new T(at::cat(outs[0], 0));
  })
}

// Every rank's n bytes (n equal on every rank) into out (world · n bytes), rank order: how
// serialised results (an evaluation's samples) travel between ranks.
int dddit_dist_all_gather_bytes(void* gp, const uint8_t* data, int64_t n, uint8_t* out) {
  DIST_GUARD({
    auto g = static_cast<Group*>(gp);
    auto host = at::from_blob(const_cast<uint8_t*>(data), {n}, at::TensorOptions().dtype(at::kByte)).clone();
    auto t = g->nccl ? host.to(at::kCUDA) : host;
    std::vector<std::vector<T>> outs(1);
    for (int r = 0; r < g->world; ++r) outs[0].push_back(at::empty_like(t));
    std::vector<T> in{t};
    wait(g->backend->allgather(outs, in));
    auto all = at::cat(outs[0], 0).to(at::kCPU).contiguous();
    std::memcpy(out, all.data_ptr<uint8_t>(), static_cast<size_t>(n) * g->world);
  })
}

// Waits until every rank has reached it.
int dddit_dist_barrier(void* gp) {
  DIST_GUARD({
    auto g = static_cast<Group*>(gp);
    wait(g->backend->barrier());
  })
}

}  // extern "C"
