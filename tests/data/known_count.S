// A static aarch64 program (no libc) whose executed instructions are known by construction.
// Assembled with: aarch64-linux-gnu-as --defsym ITERATIONS=K; linked with aarch64-linux-gnu-ld -static.
// Executed: 6 (entry) + 17 * ITERATIONS (loop) + 2 * ITERATIONS (leaf) + 3 (exit) = 9 + 19 * ITERATIONS.
//   per iteration: fma 3 (fmla vector, fmla by element, fmls vector), fma_scalar 2 (fmadd, scalar fmla by element),
//   loads_stores 6 (ldr q, ldr x, str q, stp, ld1, prfm; 3 of them SIMD&FP), branches 3 (bl, ret, b.ne).
    .text
    .global _start
_start:
    adr     x1, buffer                      // other
    movz    x0, #(ITERATIONS & 0xffff)      // other
    movk    x0, #(ITERATIONS >> 16), lsl #16 // other
    movi    v0.4s, #0                       // other (SIMD, not FMA)
    movi    v2.2d, #0                       // other
    fmov    s3, #1.0                        // other
loop:
    ldr     q1, [x1]                        // load_store simd
    ldr     x2, [x1, #16]                   // load_store
    fmla    v0.4s, v1.4s, v1.4s             // fma (vector)
    fmla    v0.4s, v1.4s, v1.s[1]           // fma (by element)
    fmls    v2.2d, v1.2d, v1.2d             // fma (vector, fp64)
    fmul    v6.4s, v1.4s, v1.s[0]           // other: multiply only
    fadd    v7.4s, v1.4s, v1.4s             // other: add only
    fmadd   s3, s3, s3, s3                  // fma_scalar
    fmla    s4, s4, v1.s[0]                 // fma_scalar (scalar by element)
    str     q0, [x1, #32]                   // load_store simd
    add     x2, x2, #1                      // other
    stp     x2, x2, [x1, #48]               // load_store
    ld1     {v5.4s}, [x1]                   // load_store simd
    prfm    pldl1keep, [x1, #64]            // load_store (prefetch)
    bl      leaf                            // branch
    subs    x0, x0, #1                      // other
    b.ne    loop                            // branch
    movz    x0, #0                          // other
    movz    x8, #93                         // other (exit)
    svc     #0                              // branch class (exception generation)
leaf:
    add     x3, x3, #1                      // other
    ret                                     // branch

    .bss
    .balign 16
buffer:
    .skip   128
