"""Honest anchors for ``make bench`` (issue 11): what the hardware and hand-written code reach.

- :func:`c_kernels`: ``kernels/sam_rosenbrock.c`` compiled at run time with the system's gcc
  (flags :data:`CFLAGS`) into a temporary directory and loaded with ctypes; None with a note where
  gcc (or OpenMP) is missing. Blocked OpenMP kernels for deterministic SAM on Rosenbrock and for
  Gaussian-noise SAM on x² − y² with an in-kernel counter-hash sampler.
- :func:`numba_kernels`: the same two workloads in numba (``parallel=True, fastmath=False``), prange
  over particle blocks, steps inner; None where numba is not installed.
- :func:`hardware_bound`: particle-steps/s that the floating-point units allow for an instruction
  mix (:data:`ROSENBROCK_SAM_OPS`), from a per-microarchitecture table (:data:`CPU_TABLE`), the
  cores this process may use and the measured clock (:func:`measure_clock_hz`).
- :func:`optax_sam_loop`: ``optax.contrib.sam`` in an ordinary jitted optax training loop, the peer
  of ``samdyn.nets.train`` on the MNIST-1D MLP.

The kernels take and return particles as ``(N, 2)`` arrays like ``samdyn.simulate``'s ``final``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

HERE = Path(__file__).resolve().parent
KERNEL_SOURCE = HERE / "kernels" / "sam_rosenbrock.c"
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-fast-math", "-fno-math-errno", "-ffp-contract=fast",
          "-std=gnu11", "-shared", "-fPIC")
BLOCK = 512  # particles per block in both kernels (the C source's BLOCK): 4 KiB of float32 x, y


def cores() -> int:
    """CPU cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _soa(w, dtype):
    w = np.asarray(w, dtype=dtype)
    if w.ndim != 2 or w.shape[1] != 2:
        raise ValueError(f"anchors: particles must have shape (N, 2), got {w.shape}")
    return np.ascontiguousarray(w[:, 0]), np.ascontiguousarray(w[:, 1])


# ---- the C kernels ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CKernels:
    """The compiled kernels (see ``kernels/sam_rosenbrock.c``); ``note`` says how they were built."""

    lib: ctypes.CDLL
    note: str

    def sam_rosenbrock(self, w, steps: int, lr: float, rho: float, eps: float = 1e-12, *, dtype=np.float32,
                       threads: int | None = None) -> np.ndarray:
        """Normalised SAM on Rosenbrock for ``steps`` steps from ``w`` (N, 2); float32 or float64."""
        dtype = np.dtype(dtype)
        x, y = _soa(w, dtype)
        fn = self.lib.sam_rosenbrock_f32 if dtype == np.float32 else self.lib.sam_rosenbrock_f64
        fn(x.ctypes.data, y.ctypes.data, len(x), steps, lr, rho, eps, threads or cores())
        return np.stack([x, y], axis=1)

    def sam_saddle_noise(self, w, steps: int, lr: float, rho: float, std: float, seed: int = 0, eps: float = 1e-12, *,
                         threads: int | None = None) -> np.ndarray:
        """Gaussian-noise SAM on x² − y² (steps 1…steps, noise of (seed, step, particle)), float32."""
        x, y = _soa(w, np.float32)
        self.lib.sam_saddle_noise_f32(x.ctypes.data, y.ctypes.data, len(x), steps, lr, rho, eps, std, seed,
                                      threads or cores())
        return np.stack([x, y], axis=1)

    def normals(self, seed: int, step: int, n: int, first: int = 0):
        """The noisy kernel's two standard normals (z0, z1) of particles first…first+n−1 at ``step``."""
        z0, z1 = np.empty(n, np.float32), np.empty(n, np.float32)
        self.lib.normals(seed, step, first, n, z0.ctypes.data, z1.ctypes.data)
        return z0, z1

    def clock_hz(self, trials: int = 30, iterations: int = 200_000) -> float | None:
        """Core clock from a chain of dependent integer adds (one per cycle); the fastest of
        ``trials`` (a trial that lost its core to another process only reads low). None off x86-64."""
        best = None
        for _ in range(trials):
            t0 = time.perf_counter()
            if self.lib.add_chain(iterations) < 0:
                return None
            hz = 8 * iterations / (time.perf_counter() - t0)
            best = hz if best is None else max(best, hz)
        return best


@functools.cache
def c_kernels() -> tuple[CKernels | None, str]:
    """Compile and load the C kernels once per process: ``(kernels, note)``, kernels None when
    gcc is missing or the build fails (the note says why)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "skipped: no gcc on this machine"
    # libgomp reads this when it loads: threads sleep between parallel regions instead of spinning,
    # so the C rows leave no busy threads behind while JAX is timed.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory(prefix="samdyn-anchors-") as tmp:
        so = Path(tmp) / "sam_kernels.so"
        cmd = [gcc, *CFLAGS, "-o", str(so), str(KERNEL_SOURCE), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"skipped: gcc failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})"
        lib = ctypes.CDLL(str(so))  # mapped: the file may go with the directory
    ptr = ctypes.c_void_p
    lib.sam_rosenbrock_f32.restype = lib.sam_rosenbrock_f64.restype = None
    lib.sam_saddle_noise_f32.restype = lib.normals.restype = None
    lib.add_chain.restype = ctypes.c_long
    lib.sam_rosenbrock_f32.argtypes = [ptr, ptr, ctypes.c_long, ctypes.c_long] + [ctypes.c_float] * 3 + [ctypes.c_int]
    lib.sam_rosenbrock_f64.argtypes = [ptr, ptr, ctypes.c_long, ctypes.c_long] + [ctypes.c_double] * 3 + [ctypes.c_int]
    lib.sam_saddle_noise_f32.argtypes = ([ptr, ptr, ctypes.c_long, ctypes.c_long] + [ctypes.c_float] * 4
                                         + [ctypes.c_uint64, ctypes.c_int])
    lib.normals.argtypes = [ctypes.c_uint64, ctypes.c_long, ctypes.c_long, ctypes.c_long, ptr, ptr]
    lib.add_chain.argtypes = [ctypes.c_long]
    version = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    return CKernels(lib, f"gcc {version} {' '.join(CFLAGS[:6])}"), ""


# ---- the numba kernels ------------------------------------------------------------------------------

def _numba_build():
    import numba
    from numba import prange

    jit = functools.partial(numba.njit, parallel=True, fastmath=False, error_model="numpy", cache=True)

    @jit
    def rosenbrock(x, y, steps, lr, rho, eps, k, block):
        # k = (1, 2, 200, 400) in the particles' dtype: numba would promote a float32 op with a
        # Python literal to float64
        one, two, c200, c400 = k[0], k[1], k[2], k[3]
        n = x.shape[0]
        for b in prange((n + block - 1) // block):
            bx, by = x[b * block:(b + 1) * block], y[b * block:(b + 1) * block]
            for _ in range(steps):
                for i in range(bx.shape[0]):  # from 0: no negative-index wraparound, so LLVM vectorises
                    xi, yi = bx[i], by[i]
                    a = yi - xi * xi
                    gx = two * (xi - one) - c400 * xi * a
                    gy = c200 * a
                    s = rho / (np.sqrt(gx * gx + gy * gy) + eps)
                    px, py = xi + s * gx, yi + s * gy
                    ap = py - px * px
                    bx[i] = xi - lr * (two * (px - one) - c400 * px * ap)
                    by[i] = yi - lr * (c200 * ap)

    mask = np.uint64(0xFFFFFFFF)
    s16, s15, s8, s32 = np.uint64(16), np.uint64(15), np.uint64(8), np.uint64(32)
    m1, m2, golden, one_u = np.uint64(0x7FEB352D), np.uint64(0x846CA68B), np.uint64(0x9E3779B9), np.uint64(1)

    @numba.njit(inline="always")
    def lowbias32(v):  # on uint64 holding 32 bits: the C kernel's lowbias32
        v ^= v >> s16
        v = (v * m1) & mask
        v ^= v >> s15
        v = (v * m2) & mask
        return v ^ (v >> s16)

    @numba.njit(inline="always")
    def step_key(seed, step):
        s = lowbias32((np.uint64(step) + golden) & mask)
        k0 = lowbias32((seed & mask) ^ s)
        return k0, lowbias32((seed >> s32) ^ lowbias32(k0 ^ s))

    f32 = np.float32
    inv24, pi, half = f32(1.0 / 16777216.0), f32(np.pi), f32(0.5)
    sin_c = tuple(f32(c) for c in (-1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800))
    cos_c = tuple(f32(c) for c in (-1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600))
    f1, f2, fm2 = f32(1), f32(2), f32(-2)

    @numba.njit(inline="always")
    def normal_pair(k0, k1, p):
        a = lowbias32(p ^ k0)
        b0, b1 = lowbias32(lowbias32(a) ^ k1), lowbias32(lowbias32(a ^ one_u) ^ k1)
        u1 = (f32(b0 >> s8) + half) * inv24
        h = (f32(b1 >> s8) * inv24 - half) * pi
        h2 = h * h
        sn = h * (f1 + h2 * (sin_c[0] + h2 * (sin_c[1] + h2 * (sin_c[2] + h2 * (sin_c[3] + h2 * (sin_c[4] + h2 * sin_c[5]))))))
        cs = f1 + h2 * (cos_c[0] + h2 * (cos_c[1] + h2 * (cos_c[2] + h2 * (cos_c[3] + h2 * (cos_c[4] + h2 * cos_c[5])))))
        r = np.sqrt(fm2 * np.log(u1))
        return r * (f2 * sn * cs), r * (cs * cs - sn * sn)

    @numba.njit(cache=True)
    def normals(seed, step, first, n):
        z0, z1 = np.empty(n, np.float32), np.empty(n, np.float32)
        k0, k1 = step_key(seed, step)
        for i in range(n):
            z0[i], z1[i] = normal_pair(k0, k1, np.uint64(first + i))
        return z0, z1

    @jit
    def saddle_noise(x, y, steps, lr, rho, eps, std, seed, block):
        n = x.shape[0]
        for b in prange((n + block - 1) // block):
            bx, by = x[b * block:(b + 1) * block], y[b * block:(b + 1) * block]
            first = np.uint64(b * block)
            for t in range(1, steps + 1):
                k0, k1 = step_key(seed, t)
                for i in range(bx.shape[0]):
                    nx, ny = normal_pair(k0, k1, first + np.uint64(i))
                    nx, ny = nx * std, ny * std
                    xi, yi = bx[i], by[i]
                    gx, gy = f2 * xi + nx, fm2 * yi + ny
                    s = rho / (np.sqrt(gx * gx + gy * gy) + eps)
                    px, py = xi + s * gx, yi + s * gy
                    bx[i] = xi - lr * (f2 * px + nx)
                    by[i] = yi - lr * (fm2 * py + ny)

    return numba, rosenbrock, saddle_noise, normals


@dataclasses.dataclass(frozen=True)
class NumbaKernels:
    """The numba kernels (same arithmetic and sampler as the C ones, except ``log`` is libm's)."""

    numba: object
    _rosenbrock: object
    _saddle_noise: object
    _normals: object
    note: str

    def _threads(self, threads):
        self.numba.set_num_threads(min(threads or cores(), self.numba.config.NUMBA_NUM_THREADS))

    def sam_rosenbrock(self, w, steps: int, lr: float, rho: float, eps: float = 1e-12, *, dtype=np.float32,
                       threads: int | None = None) -> np.ndarray:
        dtype = np.dtype(dtype)
        x, y = _soa(w, dtype)
        self._threads(threads)
        s = dtype.type
        self._rosenbrock(x, y, steps, s(lr), s(rho), s(eps), np.array([1, 2, 200, 400], dtype), BLOCK)
        return np.stack([x, y], axis=1)

    def sam_saddle_noise(self, w, steps: int, lr: float, rho: float, std: float, seed: int = 0, eps: float = 1e-12, *,
                         threads: int | None = None) -> np.ndarray:
        x, y = _soa(w, np.float32)
        self._threads(threads)
        f = np.float32
        self._saddle_noise(x, y, steps, f(lr), f(rho), f(eps), f(std), np.uint64(seed), BLOCK)
        return np.stack([x, y], axis=1)

    def normals(self, seed: int, step: int, n: int, first: int = 0):
        return self._normals(np.uint64(seed), step, first, n)


@functools.cache
def numba_kernels() -> tuple[NumbaKernels | None, str]:
    """``(kernels, note)``; kernels None (note says why) where numba is not installed."""
    try:
        built = _numba_build()
    except ImportError:
        return None, "skipped: numba not installed (pip install '.[bench]')"
    return NumbaKernels(*built, note=f"numba {built[0].__version__}, parallel=True, fastmath=False"), ""


# ---- the hardware bound -----------------------------------------------------------------------------

# Floating-point operations per particle-step of sam_rosenbrock_f32, as gcc 12 compiles the C source
# with CFLAGS for Zen 3 (objdump of the vectorised loop: one ymm instruction each per 8 particles):
# 1 vsqrtps, 1 vdivps, 7 vmulps, 9 FMAs, 3 vaddps. As written the source has 16 multiplies and
# 12 adds; contraction folds 9 adds into FMAs, which leaves the multiply/FMA pipes' load (16) alone.
ROSENBROCK_SAM_OPS = {"sqrt": 1, "div": 1, "mul": 7, "fma": 9, "add": 3}


@dataclasses.dataclass(frozen=True)
class Unit:
    """An execution unit: ``pipes`` identical pipes, each busy ``cycles[op]`` cycles per vector
    instruction of kind ``op`` (its reciprocal throughput)."""

    pipes: int
    cycles: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class VectorCore:
    """One core's floating-point units for float32 vectors of ``lanes`` lanes."""

    name: str
    lanes: int
    units: Mapping[str, Unit]
    source: str


# Keyed by (/proc/cpuinfo vendor_id, cpu family). Family 19h is Zen 3 and Zen 4: their float32 ymm
# divide and square root cost the same. Values: LLVM's scheduling models X86ScheduleZnver3.td and
# X86ScheduleZnver4.td (llvm-exegesis measurements, cross-checked there against AMD's Software
# Optimization Guide for family 19h and Agner Fog's tables): WriteFDivY latency 11, 3 cycles of the
# FDIV pipe; WriteFSqrtY latency 15, 5 cycles of the same pipe (divide and square root share it);
# WriteFMulY / WriteFMAY 1 cycle on either of pipes 0, 1; WriteFAddY 1 cycle on either of pipes 2, 3.
# Assumption: the bound lets every unit run at full throughput at once on all cores, with no loads,
# stores, loop overhead or dependency stalls; it is an upper bound, not a prediction.
CPU_TABLE: dict[tuple[str, int], VectorCore] = {
    ("AuthenticAMD", 25): VectorCore(
        name="AMD family 19h (Zen 3/4), AVX2 float32",
        lanes=8,
        units={"fp divide/sqrt": Unit(1, {"div": 3, "sqrt": 5}),
               "fp mul/FMA": Unit(2, {"mul": 1, "fma": 1}),
               "fp add": Unit(2, {"add": 1})},
        source="LLVM X86ScheduleZnver3.td / X86ScheduleZnver4.td (WriteFDivY, WriteFSqrtY, WriteFMulY, WriteFMAY, WriteFAddY)"),
}


def hardware_bound(ops: Mapping[str, float], core: VectorCore, n_cores: int, clock_hz: float):
    """Upper bound on particle-steps/s for a step with instruction mix ``ops`` (per particle-step).

    Each unit needs ``Σ_op ops[op] · cycles[op] / (lanes · pipes)`` cycles per particle-step; the
    busiest unit sets the bound ``n_cores · clock_hz / cycles``. Returns ``(bound, {unit: its own
    bound})``. Every op must be served by some unit.

    >>> core = VectorCore("toy", 4, {"div": Unit(1, {"div": 2})}, "made up")
    >>> hardware_bound({"div": 1}, core, 2, 1e9)[0]
    4000000000.0
    """
    served = {op for unit in core.units.values() for op in unit.cycles}
    missing = sorted(set(ops) - served)
    if missing:
        raise ValueError(f"hardware_bound: no unit of {core.name!r} executes {missing}")
    per_unit = {}
    for name, unit in core.units.items():
        cycles = sum(ops.get(op, 0) * c for op, c in unit.cycles.items()) / (core.lanes * unit.pipes)
        if cycles > 0:
            per_unit[name] = n_cores * clock_hz / cycles
    return min(per_unit.values()), per_unit


def cpu_identity() -> dict:
    """vendor_id, cpu family, model, model name and cpu MHz of the first core in /proc/cpuinfo ({} elsewhere)."""
    info = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        return {}
    out = {"vendor": info.get("vendor_id", ""), "model_name": info.get("model name", "")}
    for key, name, cast in (("cpu family", "family", int), ("model", "model", int), ("cpu MHz", "mhz", float)):
        try:
            out[name] = cast(info[key])
        except (KeyError, ValueError):
            out[name] = None
    return out


def machine_bound(ops: Mapping[str, float] = ROSENBROCK_SAM_OPS) -> dict:
    """The bound on this machine: cores from the affinity mask, the clock measured by the C kernels'
    add chain (else /proc/cpuinfo's MHz), the units from :data:`CPU_TABLE`. ``bound`` is None (with
    a ``note``) when the CPU has no table entry or no clock could be read."""
    cpu = cpu_identity()
    n = cores()
    kernels, _ = c_kernels()
    measured = kernels.clock_hz() if kernels else None
    listed = cpu.get("mhz") and cpu["mhz"] * 1e6
    clock = measured or listed
    out = {"cpu": cpu, "cores": n, "clock_hz": clock, "clock_source": "add chain" if measured else "/proc/cpuinfo",
           "cpuinfo_hz": listed, "ops": dict(ops), "bound": None, "per_unit": None, "core": None, "note": ""}
    core = CPU_TABLE.get((cpu.get("vendor"), cpu.get("family")))
    if core is None:
        out["note"] = f"no throughput table for {cpu.get('vendor') or '?'} family {cpu.get('family')}"
    elif not clock:
        out["note"] = "no clock: neither the add chain nor /proc/cpuinfo"
    else:
        out["bound"], out["per_unit"] = hardware_bound(ops, core, n, clock)
        out["core"] = {"name": core.name, "lanes": core.lanes, "source": core.source}
    return out


# ---- optax.contrib.sam in an ordinary training loop -------------------------------------------------

def optax_sam_loop(model, n_train: int, batch_size: int, steps: int, lr: float, rho: float, momentum: float):
    """A jitted ``run(init_key, data_key, x, y) -> params``: ``steps`` SAM steps of
    ``optax.contrib.sam`` (transparent mode, ``sync_period=2``: an adversarial update then the outer
    update, two gradients per SAM step, both on the step's minibatch) with base ``optax.sgd(lr,
    momentum)`` and adversary ``chain(normalize(), sgd(rho))``.

    Minibatches are those of ``samdyn.nets.train`` with the same keys (one permutation per epoch,
    drawn inside the jitted program like ``train`` does), and so is the initialisation, so both
    loops do the same steps on the same data.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from samdyn import nets
    from samdyn.nets.training import epoch_permutation

    opt = optax.contrib.sam(optax.sgd(lr, momentum=momentum or None),
                            optax.chain(optax.contrib.normalize(), optax.sgd(rho)), sync_period=2, opaque_mode=False)
    per_epoch = n_train // batch_size
    epochs = math.ceil(steps / per_epoch)

    def loss(params, xb, yb):
        return nets.loss_fn(model, params, xb, yb)

    @jax.jit
    def run(init_key, data_key, x, y):
        params = model.init(init_key, x.dtype)
        perms = jax.vmap(lambda e: epoch_permutation(jax.random.fold_in(data_key, e), n_train))(jnp.arange(epochs))
        batches = perms[:, :per_epoch * batch_size].reshape(-1, batch_size)[:steps]

        def sam_step(carry, idx):
            params, state = carry
            xb, yb = x[idx], y[idx]
            for _ in range(2):  # transparent mode: one optimizer call per gradient
                updates, state = opt.update(jax.grad(loss)(params, xb, yb), state, params)
                params = optax.apply_updates(params, updates)
            return (params, state), None

        (params, _), _ = jax.lax.scan(sam_step, (params, opt.init(params)), batches)
        return params

    return run
