// oneDNN (Debian's libdnnl-dev 2.6) for the bf16 matrix products.
//
// dnnl_gemm_bf16bf16f32 is exported by libdnnl.so.2 but missing from the public headers, so
// it is declared here: row-major C = alpha * op(A) * op(B) + beta * C with bf16 A and B (as
// raw 16-bit words) and an f32 C, accumulated in f32.
// oneDNN's CPU runtime is OpenMP (libgomp); omp.h is not on Swift's clang path, so the two
// thread-count functions are declared here too and libgomp is linked directly.
#include <stdint.h>
#include <dnnl.h>

dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                    float alpha, const uint16_t *A, dnnl_dim_t lda, const uint16_t *B,
                                    dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc);

extern void omp_set_num_threads(int count);
extern int omp_get_max_threads(void);
