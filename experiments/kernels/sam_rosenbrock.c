/* Hand-written anchors for `make bench` (issue 11): normalised SAM on particles in 2-D, in C.
 *
 * Built by experiments/anchors.py with the system's gcc:
 *     gcc -O3 -march=native -fopenmp -fno-fast-math -fno-math-errno -ffp-contract=fast -std=gnu11
 *         -shared -fPIC
 * -fno-fast-math: IEEE semantics, exact (correctly rounded) sqrtf and division, no reciprocal
 * approximations, no reassociation. -fno-math-errno only lets gcc use the vsqrtps instruction
 * without an errno branch (the results are the same). -ffp-contract=fast (gcc's GNU-mode default,
 * made explicit) lets a multiply and an add fuse into one FMA, which rounds once instead of twice.
 *
 * Layout: structure of arrays x[], y[] (float32); particles are cut into blocks of BLOCK, the
 * blocks are shared among OpenMP threads, and each block runs all its steps before the next one
 * (steps inner), so the block's x, y stay in L1 (2 x 512 x 4 B = 4 KiB). The loop over a block's
 * particles has no branches and vectorises (8 floats per AVX2 register).
 *
 * One step of normalised SAM, for every particle w = (x, y) (momentum 0, the benchmark's case):
 *     g = grad f(w);  e = rho g / (|g| + eps);  w <- w - lr grad f(w + e)
 * on Rosenbrock f = (1 - x)^2 + 100 (y - x^2)^2, grad f = (2 (x - 1) - 400 x (y - x^2), 200 (y - x^2)).
 * Arithmetic per particle-step, as written below (anchors.py's ROSENBROCK_SAM_OPS repeats it):
 *     1 sqrt, 1 div, 16 mul, 12 add/sub (FMA contraction fuses some mul+add pairs).
 *
 * The noisy kernel: Gaussian-noise SAM on f = x^2 - y^2 with xi ~ N(0, std^2 I) drawn fresh for
 * each particle and step and shared by SAM's two gradients (samdyn's noise.gaussian default):
 *     g = grad f(w) + xi;  e = rho g / (|g| + eps);  w <- w - lr (grad f(w + e) + xi).
 * The normals come from a counter hash of (seed, step, particle) -- lowbias32 (C. Wellons) as in
 * samdyn's "fast" sampler -- and Box-Muller with a polynomial log and sine/cosine, so the whole step
 * is branch-free and vectorises. It does not reproduce samdyn's bits (its step keys come from
 * Threefry); it reproduces their distribution.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 512

/* ---- deterministic SAM on Rosenbrock, float32 (timed) and float64 (the oracle test) ---------- */

#define SAM_ROSENBROCK(NAME, REAL, SQRT)                                                          \
void NAME(REAL *x, REAL *y, long n, long steps, REAL lr, REAL rho, REAL eps, int threads)         \
{                                                                                                 \
    long nblocks = (n + BLOCK - 1) / BLOCK;                                                       \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                            \
    for (long b = 0; b < nblocks; b++) {                                                          \
        long lo = b * BLOCK, m = (n - lo < BLOCK) ? n - lo : BLOCK;                               \
        REAL *restrict bx = x + lo, *restrict by = y + lo;                                        \
        for (long t = 0; t < steps; t++) {                                                        \
            for (long i = 0; i < m; i++) {                                                        \
                REAL xi = bx[i], yi = by[i];                                                      \
                REAL a = yi - xi * xi;                                                            \
                REAL gx = (REAL)2 * (xi - (REAL)1) - (REAL)400 * xi * a;                          \
                REAL gy = (REAL)200 * a;                                                          \
                REAL s = rho / (SQRT(gx * gx + gy * gy) + eps);                                   \
                REAL px = xi + s * gx, py = yi + s * gy;                                          \
                REAL ap = py - px * px;                                                           \
                REAL dx = (REAL)2 * (px - (REAL)1) - (REAL)400 * px * ap;                         \
                REAL dy = (REAL)200 * ap;                                                         \
                bx[i] = xi - lr * dx;                                                             \
                by[i] = yi - lr * dy;                                                             \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}

SAM_ROSENBROCK(sam_rosenbrock_f32, float, sqrtf)
SAM_ROSENBROCK(sam_rosenbrock_f64, double, sqrt)

/* ---- the counter-hash normal sampler -------------------------------------------------------- */

static inline uint32_t lowbias32(uint32_t v)
{
    v ^= v >> 16;
    v *= 0x7feb352dU;
    v ^= v >> 15;
    v *= 0x846ca68bU;
    return v ^ (v >> 16);
}

/* The step's two key words: a hash chain of (seed, step); shared by all particles of the step. */
static inline void step_key(uint64_t seed, long step, uint32_t *k0, uint32_t *k1)
{
    uint32_t s = lowbias32((uint32_t)step + 0x9e3779b9U);
    *k0 = lowbias32((uint32_t)seed ^ s);
    *k1 = lowbias32((uint32_t)(seed >> 32) ^ lowbias32(*k0 ^ s));
}

/* log(u) for normal u > 0: u = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = log(1 + r) by the
 * Cephes logf polynomial (relative error ~1e-9 in exact arithmetic, below float32 resolution). */
static inline float log_poly(float u)
{
    uint32_t bits;
    memcpy(&bits, &u, 4);
    int e = (int)(bits >> 23) - 126;
    bits = (bits & 0x007fffffU) | 0x3f000000U;          /* m in [0.5, 1) */
    float m;
    memcpy(&m, &bits, 4);
    int low = m < 0.70710678f;                          /* then use 2m in [sqrt(1/2), 1) */
    e -= low;
    float r = m * (float)(1 + low) - 1.0f;
    float z = r * r;
    float p = 7.0376836292e-2f;
    p = p * r - 1.1514610310e-1f;
    p = p * r + 1.1676998740e-1f;
    p = p * r - 1.2420140846e-1f;
    p = p * r + 1.4249322787e-1f;
    p = p * r - 1.6668057665e-1f;
    p = p * r + 2.0000714765e-1f;
    p = p * r - 2.4999993993e-1f;
    p = p * r + 3.3333331174e-1f;
    return r + (r * z * p - 0.5f * z) + (float)e * 0.693147180559945f;
}

/* Two standard normals from the hash of (key, particle p): Box-Muller on two 24-bit uniforms,
 * with sin/cos of the half angle h in [-pi/2, pi/2) by Taylor polynomials (as samdyn's sampler). */
static inline void normal_pair(uint32_t k0, uint32_t k1, uint32_t p, float *z0, float *z1)
{
    uint32_t a = lowbias32(p ^ k0);
    uint32_t b0 = lowbias32(lowbias32(a) ^ k1), b1 = lowbias32(lowbias32(a ^ 1U) ^ k1);
    float u1 = ((float)(int32_t)(b0 >> 8) + 0.5f) * (1.0f / 16777216.0f);             /* (0, 1) */
    float h = ((float)(int32_t)(b1 >> 8) * (1.0f / 16777216.0f) - 0.5f) * 3.14159265358979f;
    float h2 = h * h;
    float sn = h * (1.0f + h2 * (-1.0f / 6 + h2 * (1.0f / 120 + h2 * (-1.0f / 5040 + h2 * (1.0f / 362880
               + h2 * (-1.0f / 39916800 + h2 * (1.0f / 6227020800.0f)))))));
    float cs = 1.0f + h2 * (-0.5f + h2 * (1.0f / 24 + h2 * (-1.0f / 720 + h2 * (1.0f / 40320
               + h2 * (-1.0f / 3628800 + h2 * (1.0f / 479001600.0f))))));
    float r = sqrtf(-2.0f * log_poly(u1));
    *z0 = r * (2.0f * sn * cs);                                                /* r sin 2h */
    *z1 = r * (cs * cs - sn * sn);                                             /* r cos 2h */
}

/* The sampler alone, for its tests: z0[i], z1[i] of particle first + i at step `step`. */
void normals(uint64_t seed, long step, long first, long n, float *z0, float *z1)
{
    uint32_t k0, k1;
    step_key(seed, step, &k0, &k1);
    for (long i = 0; i < n; i++)
        normal_pair(k0, k1, (uint32_t)(first + i), &z0[i], &z1[i]);
}

/* ---- Gaussian-noise SAM on x^2 - y^2, float32; steps are numbered 1..steps ------------------ */

void sam_saddle_noise_f32(float *x, float *y, long n, long steps, float lr, float rho, float eps,
                          float std, uint64_t seed, int threads)
{
    long nblocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (long b = 0; b < nblocks; b++) {
        long lo = b * BLOCK, m = (n - lo < BLOCK) ? n - lo : BLOCK;
        float *restrict bx = x + lo, *restrict by = y + lo;
        for (long t = 1; t <= steps; t++) {
            uint32_t k0, k1;
            step_key(seed, t, &k0, &k1);
            for (long i = 0; i < m; i++) {
                float nx, ny;
                normal_pair(k0, k1, (uint32_t)(lo + i), &nx, &ny);
                nx *= std;
                ny *= std;
                float xi = bx[i], yi = by[i];
                float gx = 2.0f * xi + nx, gy = -2.0f * yi + ny;
                float s = rho / (sqrtf(gx * gx + gy * gy) + eps);
                float px = xi + s * gx, py = yi + s * gy;
                bx[i] = xi - lr * (2.0f * px + nx);
                by[i] = yi - lr * (-2.0f * py + ny);
            }
        }
    }
}

/* ---- the clock: a chain of dependent integer adds retires one add per cycle ----------------- */

long add_chain(long iterations)
{
    long v = 0;
#if defined(__x86_64__)
    for (long i = 0; i < iterations; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(v));
#else
    (void)iterations;
    v = -1;                                 /* not measured here: the caller falls back to cpuinfo */
#endif
    return v;
}
