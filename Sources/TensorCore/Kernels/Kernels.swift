/// The kernels every model layer calls.
///
/// Model code never touches raw memory: it calls `Kernels.<name>`. This alias is the one place
/// where the implementation is chosen, so another backend (a GPU, another BLAS) would provide
/// a type with the same static functions and be selected here without touching model code.
public typealias Kernels = CPUKernels

/// CPU kernels: OpenBLAS for matrix products, and loops split across `Threading.threadCount`
/// threads for elementwise work and reductions.
public enum CPUKernels {}
