//! With the `tch` feature, compiles `csrc/fused.cpp` (ATen's fused kernels behind a C ABI) and
//! `csrc/dist.cpp` (c10d's process groups for data parallelism) against the LibTorch headers of
//! the library torch-sys links, which torch-sys reports as `DEP_TCH_LIBTORCH_LIB`. Without it,
//! nothing is built.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "tch")]
    shim();
}

#[cfg(feature = "tch")]
fn shim() {
    use std::path::PathBuf;
    println!("cargo:rerun-if-changed=csrc/fused.cpp");
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-changed=csrc/third_party/gloo");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports its LibTorch as DEP_TCH_LIBTORCH_LIB"),
    );
    // torch-sys reports `<libtorch>/lib`; the headers are beside it.
    let root = lib.parent().expect("LibTorch lib dir has a parent").to_path_buf();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    // CUDA graphs need the CUDA runtime's headers, which LibTorch's wheel does not ship:
    // scripts/build-gpu.sh unpacks them from the nvidia-cuda-runtime wheel.
    println!("cargo:rerun-if-env-changed=DDDIT_CUDA_INCLUDE");
    let cuda = std::env::var("DDDIT_CUDA_INCLUDE").ok().filter(|s| !s.is_empty());
    let mut build = cc::Build::new();
    if let Some(inc) = &cuda {
        build.include(inc).define("DDDIT_CUDA_GRAPH", None);
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    // c10d's ProcessGroupGloo header includes gloo's headers, which LibTorch does not ship:
    // the few it needs are vendored (csrc/third_party/gloo/README.md).
    build.define("USE_C10D_GLOO", None).include("csrc/third_party/gloo");
    // NCCL's process group needs nccl.h of the NCCL version LibTorch was built with (its
    // macros shape c10d's classes; torch 2.11 pins nvidia-nccl-cu13 2.28.9) and, through
    // ATen's CUDA context, the CUDA toolkit's headers (cuBLAS, cuSPARSE, cuSOLVER) on
    // DDDIT_CUDA_INCLUDE. Without DDDIT_NCCL_INCLUDE, data parallelism has gloo only.
    println!("cargo:rerun-if-env-changed=DDDIT_NCCL_INCLUDE");
    if let (Some(_), Some(nccl)) = (&cuda, std::env::var("DDDIT_NCCL_INCLUDE").ok().filter(|s| !s.is_empty())) {
        build.include(nccl).define("USE_C10D_NCCL", None).define("DDDIT_NCCL", None);
    }
    build
        .cpp(true)
        .file("csrc/fused.cpp")
        .file("csrc/dist.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("dddit_fused");
    println!("cargo:rustc-link-search=native={}", lib.display());
}
