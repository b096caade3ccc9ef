/* elementwise.cl: unary ops, binary ops with NumPy broadcasting, comparisons,
 * where, and the backward kernels of the float ops.
 *
 * The whole file is one program per dtype: the op is a runtime int argument,
 * never a -D option, so a process builds this file at most once per dtype
 * instead of once per op (a PoCL build takes seconds). Op codes match the
 * enums in lamina/elementwise.h. Float-only code is compiled for float
 * dtypes only (LAM_FLOAT); the integer programs (i32, u8) get the ops that
 * make sense for integers.
 *
 * Work split: each work-item maps `chunk` consecutive elements of one output
 * row, with the op switch OUTSIDE the element loop, so every case is a plain
 * loop that PoCL's compiler vectorises (the same switch inside a
 * one-element-per-work-item kernel stays scalar there and measured 3-8x
 * slower). The host passes chunk 64 on CPU devices and 1 elsewhere: on a GPU
 * one element per work-item keeps accesses coalesced, and the uniform switch
 * costs no divergence. No local memory, no barriers. */

#if defined(LAM_F32) || defined(LAM_F16) || defined(LAM_F64)
#define LAM_FLOAT 1
#endif

/* Constants keep full precision in f64 programs and stay float elsewhere
 * (a bare double literal would need cl_khr_fp64 in f32 programs). */
#ifdef LAM_F64
#define K(v) v
#else
#define K(v) v##f
#endif

/* Small helpers must inline into the element loops or the loops stay scalar. */
#define INL inline __attribute__((always_inline))

/* lam_unary_op */
#define U_NEG 0
#define U_ABS 1
#define U_SIGN 2
#define U_EXP 3
#define U_EXPM1 4
#define U_LOG 5
#define U_LOG1P 6
#define U_SQRT 7
#define U_RSQRT 8
#define U_SQUARE 9
#define U_RECIPROCAL 10
#define U_SIN 11
#define U_COS 12
#define U_TANH 13
#define U_SIGMOID 14
#define U_RELU 15
#define U_RELU6 16
#define U_LEAKY_RELU 17
#define U_ELU 18
#define U_CELU 19
#define U_SELU 20
#define U_GELU 21
#define U_GELU_TANH 22
#define U_SILU 23
#define U_MISH 24
#define U_SOFTPLUS 25
#define U_SOFTSIGN 26
#define U_HARD_SIGMOID 27
#define U_HARD_SWISH 28
#define U_LOG_SIGMOID 29
#define U_STEP 30
#define U_CLAMP 31

/* lam_binary_op */
#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_POW 4
#define B_MAXIMUM 5
#define B_MINIMUM 6

/* lam_compare_op */
#define C_EQ 0
#define C_NE 1
#define C_LT 2
#define C_LE 3
#define C_GT 4
#define C_GE 5

/* ---- op definitions ------------------------------------------------------ */

#ifdef LAM_FLOAT
#define SELU_ALPHA K(1.6732632423543772848170429916717)
#define SELU_SCALE K(1.0507009873554804934193349852946)
#define GELU_BETA K(0.79788456080286535587989211986876)  /* sqrt(2/pi) */
#define GELU_KAPPA K(0.044715)
#define RSQRT2 K(0.70710678118654752440)
#define RSQRT2PI K(0.39894228040143267793994605993438)   /* 1/sqrt(2 pi) */

/* 1/(1+exp(-x)) for every x: exp of a non-positive number only. */
INL ACC lam_sigmoid(ACC x) {
  ACC e = exp(-fabs(x));
  ACC s = K(1.0) / (K(1.0) + e);
  return x >= 0 ? s : e * s;
}

/* tanh that reaches +-1 exactly where the rounded result is +-1 (PoCL's
 * float tanh stops one ulp short, which PyTorch's does not, and 1 - t*t
 * in the backward rules must then be exactly 0). */
#ifdef LAM_F64
#define TANH_SAT 19.1
#else
#define TANH_SAT 9.1f
#endif
INL ACC lam_tanh(ACC x) { return fabs(x) > TANH_SAT ? copysign(K(1.0), x) : tanh(x); }

/* log, log1p, expm1 and the normal CDF. f64 programs use the builtins. Float
 * programs (f32, and f16 which computes in float) use the branch-free
 * versions below: PoCL calls its float log/log1p/expm1/erf out of line
 * (25-70 ns per element, measured), which made softplus, mish, elu and
 * gelu ~20x slower than exp-based ops; these inline, vectorise, and stay
 * within a few ulp (checked in tests/test_unary.c). */
#ifdef LAM_F64
#define LAM_LOG(x) log(x)
#define LAM_LOG1P(x) log1p(x)
#define LAM_EXPM1(x) expm1(x)
#define LAM_NCDF(x) (K(0.5) * erfc(-(x) * RSQRT2))
#else
/* log x = e ln2 + 2 atanh(s), s = (m-1)/(m+1), m in [sqrt(1/2), sqrt(2)):
 * |s| <= 0.172, so the atanh series to s^9 is exact to 2e-9. Subnormals
 * are scaled into range; 0, negatives, inf and NaN get C99's answers. */
INL float lam_logf(float x) {
  int sub = x < 0x1p-126f;
  uint b = as_uint(sub ? x * 0x1p23f : x);
  int e = (int)((b >> 23) & 0xffu) - 127 - (sub ? 23 : 0);
  float m = as_float((b & 0x7fffffu) | 0x3f800000u);
  int big = m > 1.41421356f;
  m = big ? 0.5f * m : m;
  e = big ? e + 1 : e;
  float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  float p = s2 * (0.33333333f + s2 * (0.2f + s2 * (0.14285714f + s2 * 0.11111111f)));
  float fe = (float)e;
  float r = fe * 0x1.62p-1f + (fe * 0x1.c85fep-10f + (2.0f * s + 2.0f * s * p));
  r = x == 0.0f ? -INFINITY : r;
  r = (x < 0.0f || isnan(x)) ? NAN : r;
  return x == INFINITY ? x : r;
}

/* log1p u = log(w) * u / (w - 1), w = 1 + u (Goldberg): exact for w == 1. */
INL float lam_log1pf(float u) {
  float w = 1.0f + u;
  float r = w == 1.0f ? u : lam_logf(w) * (u / (w - 1.0f));
  return u == INFINITY ? u : r;
}

/* expm1: Taylor to x^8 below |x| = 1/2 (error < 1e-8 relative), exp - 1 above. */
INL float lam_expm1f(float x) {
  float p = x * (1.0f + x * (0.5f + x * (0.16666667f + x * (0.041666668f + x * (8.3333333e-3f +
            x * (1.3888889e-3f + x * (1.9841270e-4f + x * 2.4801587e-5f)))))));
  return fabs(x) < 0.5f ? p : exp(x) - 1.0f;
}

/* Phi(x) = erfc(-x/sqrt2) / 2, the normal CDF of gelu. erfc z = t exp(-z^2
 * + P(t - 1/2)), t = 1/(1 + z/2), z >= 0, with P a degree-10 fit (max error
 * 6e-9 on z in [0, 10], fitted for lamina with mpmath). exp's argument
 * -z^2 = -x^2/2 comes from x itself, split so it stays exact: rounding
 * x/sqrt2 first would cost 2z^2 ulp in the tail. At most ~6 ulp. */
INL float lam_ncdff(float x) {
  float ax = fabs(x);
  float t = 1.0f / (1.0f + 0.35355339f * ax), v = t - 0.5f; /* z/2 = |x| / (2 sqrt2) */
  float p = -1.382132320e-01f;
  p = p * v + 2.607301799e-01f;
  p = p * v - 1.226950225e-02f;
  p = p * v - 2.927095984e-01f;
  p = p * v + 1.095488278e-01f;
  p = p * v + 2.821089354e-01f;
  p = p * v - 1.578236572e-01f;
  p = p * v - 3.751603801e-01f;
  p = p * v + 1.893710007e-01f;
  p = p * v + 1.345286424e+00f;
  p = p * v - 6.717940784e-01f;
  float hi = as_float(as_uint(ax) & 0xfffff000u);
  float r = 0.5f * t * exp(-0.5f * hi * hi) * exp(0.5f * (hi - ax) * (ax + hi) + p);
  r = ax > 14.2f ? 0.0f : r; /* Phi(-14.2) = 4e-46: below float's range */
  return x > 0.0f ? 1.0f - r : r;
}
#define LAM_LOG(x) lam_logf(x)
#define LAM_LOG1P(x) lam_log1pf(x)
#define LAM_EXPM1(x) lam_expm1f(x)
#define LAM_NCDF(x) lam_ncdff(x)
#endif

/* PyTorch's softplus (beta 1, threshold 20): linear above the threshold. */
INL ACC lam_softplus(ACC x) { return x > K(20.0) ? x : LAM_LOG1P(exp(x)); }

INL ACC lam_relu6(ACC x) { return x < 0 ? K(0.0) : (x > K(6.0) ? K(6.0) : x); }

/* NaN passes through; lo > hi gives hi (PyTorch's clamp). */
INL ACC lam_clamp(ACC x, ACC lo, ACC hi) {
  ACC v = x < lo ? lo : x;
  return v > hi ? hi : v;
}

INL ACC lam_dgelu(ACC x) {
  return LAM_NCDF(x) + x * exp(K(-0.5) * x * x) * RSQRT2PI;
}

/* PyTorch's gelu(approximate='tanh') backward, term for term. */
INL ACC lam_dgelu_tanh(ACC x) {
  ACC x2 = x * x;
  ACC t = lam_tanh(GELU_BETA * (x + GELU_KAPPA * x2 * x));
  return K(0.5) * (K(1.0) + t) +
         K(0.5) * x * (K(1.0) - t * t) * GELU_BETA * (K(1.0) + K(3.0) * GELU_KAPPA * x2);
}

INL ACC lam_dsilu(ACC x) {
  ACC s = lam_sigmoid(x);
  return s * (K(1.0) + x * (K(1.0) - s));
}

INL ACC lam_dmish(ACC x) {
  ACC t = lam_tanh(lam_softplus(x));
  return t + x * lam_sigmoid(x) * (K(1.0) - t * t);
}

/* X(op, y as an expression of x, p0, p1): every float unary forward. */
#define UNARY_FWD_OPS(X)                                                        \
  X(U_NEG, -x)                                                                  \
  X(U_ABS, fabs(x))                                                             \
  X(U_SIGN, (ACC)((x > 0) - (x < 0))) /* NaN -> 0 as in PyTorch */             \
  X(U_EXP, exp(x))                                                              \
  X(U_EXPM1, LAM_EXPM1(x))                                                          \
  X(U_LOG, LAM_LOG(x))                                                            \
  X(U_LOG1P, LAM_LOG1P(x))                                                        \
  X(U_SQRT, sqrt(x))                                                            \
  X(U_RSQRT, rsqrt(x))                                                          \
  X(U_SQUARE, x * x)                                                            \
  X(U_RECIPROCAL, K(1.0) / x)                                                   \
  X(U_SIN, sin(x))                                                              \
  X(U_COS, cos(x))                                                              \
  X(U_TANH, lam_tanh(x))                                                            \
  X(U_SIGMOID, lam_sigmoid(x))                                                  \
  X(U_RELU, x < 0 ? K(0.0) : x) /* keeps NaN and -0, as clamp_min does */      \
  X(U_RELU6, lam_relu6(x))                                                      \
  X(U_LEAKY_RELU, x > 0 ? x : x * p0)                                           \
  X(U_ELU, x > 0 ? x : p0 * LAM_EXPM1(x))                                         \
  /* max(0,x) + min(0, a*(exp(x/a)-1)) equals this for every a != 0 */         \
  X(U_CELU, x > 0 ? x : p0 * LAM_EXPM1(x / p0))                                   \
  X(U_SELU, SELU_SCALE * (x > 0 ? x : SELU_ALPHA * LAM_EXPM1(x)))                 \
  X(U_GELU, x * LAM_NCDF(x))                                                    \
  X(U_GELU_TANH, K(0.5) * x * (K(1.0) + lam_tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x)))) \
  X(U_SILU, x * lam_sigmoid(x))                                                 \
  X(U_MISH, x * lam_tanh(lam_softplus(x)))                                          \
  X(U_SOFTPLUS, lam_softplus(x))                                                \
  X(U_SOFTSIGN, x / (K(1.0) + fabs(x)))                                         \
  X(U_HARD_SIGMOID, lam_relu6(x + K(3.0)) / K(6.0))                             \
  X(U_HARD_SWISH, x * lam_relu6(x + K(3.0)) / K(6.0))                           \
  /* min(x,0) - log1p(exp(-|x|)): no overflow for either sign */               \
  X(U_LOG_SIGMOID, (x < 0 ? x : K(0.0)) - LAM_LOG1P(exp(-fabs(x))))               \
  X(U_STEP, x > 0 ? K(1.0) : K(0.0))                                            \
  X(U_CLAMP, lam_clamp(x, p0, p1))

/* X(op, dx as an expression of x, g, p0, p1): PyTorch's derivatives,
 * including its choices at kinks (relu'(0) = 0, clamp passes its bounds,
 * hardswish'(3) = 1.5). sign and step have none (zero almost everywhere). */
#define UNARY_BWD_OPS(X)                                                        \
  X(U_NEG, -g)                                                                  \
  X(U_ABS, x > 0 ? g : (x < 0 ? -g : K(0.0)))                                   \
  X(U_EXP, g * exp(x))                                                          \
  X(U_EXPM1, g * exp(x))                                                        \
  X(U_LOG, g / x)                                                               \
  X(U_LOG1P, g / (K(1.0) + x))                                                  \
  X(U_SQRT, g / (K(2.0) * sqrt(x)))                                             \
  X(U_RSQRT, K(-0.5) * g * rsqrt(x) / x)                                        \
  X(U_SQUARE, K(2.0) * x * g)                                                   \
  X(U_RECIPROCAL, -g / (x * x))                                                 \
  X(U_SIN, g * cos(x))                                                          \
  X(U_COS, -g * sin(x))                                                         \
  X(U_TANH, g * (K(1.0) - lam_tanh(x) * lam_tanh(x)))                                   \
  X(U_SIGMOID, g * lam_sigmoid(x) * lam_sigmoid(-x))                            \
  X(U_RELU, x > 0 ? g : K(0.0))                                                 \
  X(U_RELU6, (x > 0 && x < K(6.0)) ? g : K(0.0))                                \
  X(U_LEAKY_RELU, x > 0 ? g : g * p0)                                           \
  X(U_ELU, x > 0 ? g : g * p0 * exp(x))                                         \
  X(U_CELU, x > 0 ? g : g * exp(x / p0))                                        \
  X(U_SELU, g * SELU_SCALE * (x > 0 ? K(1.0) : SELU_ALPHA * exp(x)))            \
  X(U_GELU, g * lam_dgelu(x))                                                   \
  X(U_GELU_TANH, g * lam_dgelu_tanh(x))                                         \
  X(U_SILU, g * lam_dsilu(x))                                                   \
  X(U_MISH, g * lam_dmish(x))                                                   \
  X(U_SOFTPLUS, x > K(20.0) ? g : g * lam_sigmoid(x))                           \
  X(U_SOFTSIGN, g / ((K(1.0) + fabs(x)) * (K(1.0) + fabs(x))))                  \
  X(U_HARD_SIGMOID, (x > K(-3.0) && x < K(3.0)) ? g / K(6.0) : K(0.0))          \
  X(U_HARD_SWISH, x < K(-3.0) ? K(0.0) : (x <= K(3.0) ? g * (x / K(3.0) + K(0.5)) : g)) \
  X(U_LOG_SIGMOID, g * lam_sigmoid(-x))                                         \
  X(U_CLAMP, (x >= p0 && x <= p1) ? g : K(0.0))

/* X(op, y as an expression of a, b). pow is C99's (a negative base with an
 * integral exponent is real, as in PyTorch); maximum/minimum propagate NaN
 * from either side. */
#define BINARY_OPS(X)                                                           \
  X(B_ADD, a + b)                                                               \
  X(B_SUB, a - b)                                                               \
  X(B_MUL, a * b)                                                               \
  X(B_DIV, a / b)                                                               \
  X(B_POW, pow(a, b))                                                           \
  X(B_MAXIMUM, (a > b || isnan(a)) ? a : b)                                     \
  X(B_MINIMUM, (a < b || isnan(a)) ? a : b)

/* Gradients of a op b w.r.t. a (*ga) and b (*gb), PyTorch's rules: pow's
 * base grad is 0 where b == 0, its exponent grad 0 where a == 0 and b >= 0;
 * maximum/minimum split ties 0.5/0.5 and pass g to a NaN side. */
INL void binary_bwd(int op, ACC a, ACC b, ACC g, ACC *ga, ACC *gb) {
  switch (op) {
  case B_ADD: *ga = g; *gb = g; break;
  case B_SUB: *ga = g; *gb = -g; break;
  case B_MUL: *ga = g * b; *gb = g * a; break;
  case B_DIV: *ga = g / b; *gb = -g * a / (b * b); break;
  case B_POW:
    *ga = b == 0 ? K(0.0) : g * b * pow(a, b - K(1.0));
    *gb = (a == 0 && b >= 0) ? K(0.0) : g * pow(a, b) * LAM_LOG(a);
    break;
  case B_MAXIMUM:
  case B_MINIMUM: {
    ACC h = a == b ? K(0.5) * g : g;
    int a_loses = op == B_MAXIMUM ? a < b : a > b;
    int b_loses = op == B_MAXIMUM ? a > b : a < b;
    *ga = a_loses ? K(0.0) : h;
    *gb = b_loses ? K(0.0) : h;
    break;
  }
  default: *ga = K(0.0); *gb = K(0.0); break;
  }
}

#else /* integer programs: the ops the host accepts for i32 */

#define UNARY_FWD_OPS(X)              \
  X(U_NEG, -x)                        \
  X(U_ABS, (ACC)abs(x))               \
  X(U_SIGN, (ACC)((x > 0) - (x < 0))) \
  X(U_SQUARE, x * x)

#define BINARY_OPS(X)                        \
  X(B_ADD, a + b)                            \
  X(B_SUB, a - b)                            \
  X(B_MUL, a * b)                            \
  X(B_MAXIMUM, a > b ? a : b)                \
  X(B_MINIMUM, a < b ? a : b)
#endif

INL int compare_fwd(int op, ACC a, ACC b) {
  switch (op) {
  case C_EQ: return a == b;
  case C_NE: return a != b;
  case C_LT: return a < b;
  case C_LE: return a <= b;
  case C_GT: return a > b;
  case C_GE: return a >= b;
  default: return 0;
  }
}

/* ---- work split ----------------------------------------------------------- */

/* Work-item w of a launch over `rows` rows of `inner` elements, `chunk`
 * elements per item: returns 0 past the end, else the row and [*c0, *c1). */
INL int chunk_of(int w, int rows, int inner, int chunk, int *row, int *c0, int *c1) {
  int per_row = (inner - 1) / chunk + 1;
  int r = w / per_row;
  if (r >= rows) return 0;
  *row = r;
  *c0 = (w - r * per_row) * chunk;
  *c1 = min(inner - *c0, chunk) + *c0;
  return 1;
}

/* Broadcast kernels: the host merges adjacent axes that stay linear for
 * every operand (so [N,C] + [C] is rank 2) and passes the output shape and
 * each operand's strides (0 on broadcast axes). A work-item walks the outer
 * axes once (div/mod) to find its row's base offsets; along the last axis
 * every operand's stride is 0 or 1, so the loops below are plain streams
 * or one-side-uniform streams. */
INL void row_base(int row, int ndim, const int *shp, const int *s0, const int *s1,
                  const int *s2, int *o0, int *o1, int *o2) {
  int rem = row;
  for (int d = ndim - 2; d >= 0; d--) {
    int q = rem / shp[d], idx = rem - q * shp[d];
    *o0 += idx * s0[d];
    *o1 += idx * s1[d];
    *o2 += idx * s2[d];
    rem = q;
  }
}

/* ---- unary ------------------------------------------------------------- */

/* unary: y = op(x; p0, p1) with p0/p1 the leaky slope, alpha or clamp
 * bounds. On PoCL (2 cores, 16M f32) neg/relu/sqrt stream at ~40 GB/s,
 * exp/log/sigmoid/elu at 8-20, gelu/softplus/mish at ~5; sin and cos still
 * call PoCL's out-of-line versions (~20 ns per element), which is
 * acceptable for ops that are rare in networks. */
kernel void unary(global const REAL *px, int x_off, global REAL *py, int y_off, int n, int op,
                  ACC p0, ACC p1, int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const REAL *xp = px + x_off;
  global REAL *yp = py + y_off;
  (void)p0, (void)p1; /* integer programs have no parameterised ops */
  switch (op) {
#define UNARY_LOOP(code, expr)      \
  case code:                        \
    for (int c = c0; c < c1; c++) { \
      ACC x = LOAD(xp, c);          \
      STORE(yp, c, expr);           \
    }                               \
    break;
    UNARY_FWD_OPS(UNARY_LOOP)
#undef UNARY_LOOP
  default: break;
  }
}

/* ---- binary ------------------------------------------------------------ */

/* One loop per op over [c0, c1); LA(c) and LB(c) are defined at each use to
 * read the operands (streamed or uniform). */
#define BINARY_LOOP(code, expr)     \
  case code:                        \
    for (int c = c0; c < c1; c++) { \
      ACC a = LA(c), b = LB(c);     \
      STORE(yp, c, expr);           \
    }                               \
    break;
#define BINARY_SWITCH()           \
  switch (op) {                   \
    BINARY_OPS(BINARY_LOOP)       \
  default: break;                 \
  }

/* binary_same: a and b have the output's shape (residual adds, gates). */
kernel void binary_same(global const REAL *pa, int a_off, global const REAL *pb, int b_off,
                        global REAL *py, int y_off, int n, int op, int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const REAL *ap = pa + a_off, *bp = pb + b_off;
  global REAL *yp = py + y_off;
#define LA(c) LOAD(ap, c)
#define LB(c) LOAD(bp, c)
  BINARY_SWITCH()
#undef LA
#undef LB
}

/* binary_scalar: x op s, or s op x when scalar_first. s is a host value,
 * or with use_ptr the one element sp[sp_off] of a one-element tensor
 * operand (a uniform load; no index math). */
kernel void binary_scalar(global const REAL *px, int x_off, global const REAL *sp, int sp_off,
                          global REAL *py, int y_off, int n, int op, ACC s, int use_ptr,
                          int scalar_first, int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  ACC v = use_ptr ? LOAD(sp + sp_off, 0) : s;
  global const REAL *xp = px + x_off;
  global REAL *yp = py + y_off;
  if (scalar_first) {
#define LA(c) v
#define LB(c) LOAD(xp, c)
    BINARY_SWITCH()
#undef LA
#undef LB
  } else {
#define LA(c) LOAD(xp, c)
#define LB(c) v
    BINARY_SWITCH()
#undef LA
#undef LB
  }
}

/* binary_bcast: general broadcasting (see row_base). */
kernel void binary_bcast(global const REAL *pa, int a_off, global const REAL *pb, int b_off,
                         global REAL *py, int y_off, int n, int op, int ndim, int8 shape, int8 sa,
                         int8 sb, int chunk) {
  int shp[8], sta[8], stb[8];
  vstore8(shape, 0, shp);
  vstore8(sa, 0, sta);
  vstore8(sb, 0, stb);
  int inner = shp[ndim - 1], row, c0, c1;
  if (!chunk_of(get_global_id(0), n / inner, inner, chunk, &row, &c0, &c1)) return;
  int ia = a_off, ib = b_off, unused = 0;
  row_base(row, ndim, shp, sta, stb, stb, &ia, &ib, &unused);
  global const REAL *ap = pa + ia, *bp = pb + ib;
  global REAL *yp = py + y_off + row * inner;
  if (sta[ndim - 1] && stb[ndim - 1]) {
#define LA(c) LOAD(ap, c)
#define LB(c) LOAD(bp, c)
    BINARY_SWITCH()
#undef LA
#undef LB
  } else if (sta[ndim - 1]) {
    ACC bv = LOAD(bp, 0);
#define LA(c) LOAD(ap, c)
#define LB(c) bv
    BINARY_SWITCH()
#undef LA
#undef LB
  } else {
    ACC av = LOAD(ap, 0);
#define LA(c) av
#define LB(c) LOAD(bp, c)
    BINARY_SWITCH()
#undef LA
#undef LB
  }
}

/* ---- comparisons (uchar 0/1 out) ------------------------------------------ */
/* The six compares are cheap, so compare_fwd's switch inlines into a
 * branch-free loop body; the variants mirror the binary ones. The host
 * flips the op for a one-element left operand (a < b is b > a). */

kernel void compare_same(global const REAL *pa, int a_off, global const REAL *pb, int b_off,
                         global uchar *py, int y_off, int n, int op, int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const REAL *ap = pa + a_off, *bp = pb + b_off;
  global uchar *yp = py + y_off;
  for (int c = c0; c < c1; c++) yp[c] = (uchar)compare_fwd(op, LOAD(ap, c), LOAD(bp, c));
}

kernel void compare_scalar(global const REAL *px, int x_off, global const REAL *sp, int sp_off,
                           global uchar *py, int y_off, int n, int op, ACC s, int use_ptr,
                           int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  ACC v = use_ptr ? LOAD(sp + sp_off, 0) : s;
  global const REAL *xp = px + x_off;
  global uchar *yp = py + y_off;
  for (int c = c0; c < c1; c++) yp[c] = (uchar)compare_fwd(op, LOAD(xp, c), v);
}

kernel void compare_bcast(global const REAL *pa, int a_off, global const REAL *pb, int b_off,
                          global uchar *py, int y_off, int n, int op, int ndim, int8 shape,
                          int8 sa, int8 sb, int chunk) {
  int shp[8], sta[8], stb[8];
  vstore8(shape, 0, shp);
  vstore8(sa, 0, sta);
  vstore8(sb, 0, stb);
  int inner = shp[ndim - 1], row, c0, c1;
  if (!chunk_of(get_global_id(0), n / inner, inner, chunk, &row, &c0, &c1)) return;
  int ia = a_off, ib = b_off, unused = 0;
  row_base(row, ndim, shp, sta, stb, stb, &ia, &ib, &unused);
  global const REAL *ap = pa + ia, *bp = pb + ib;
  global uchar *yp = py + y_off + row * inner;
  int ta = sta[ndim - 1], tb = stb[ndim - 1];
  for (int c = c0; c < c1; c++) yp[c] = (uchar)compare_fwd(op, LOAD(ap, c * ta), LOAD(bp, c * tb));
}

/* ---- where ------------------------------------------------------------ */
/* cond (uchar, nonzero true) ? a : b; a plain select, copied bit for bit
 * (no ACC round trip). */

kernel void where_same(global const uchar *pc, int c_off, global const REAL *pa, int a_off,
                       global const REAL *pb, int b_off, global REAL *py, int y_off, int n,
                       int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const uchar *cp = pc + c_off;
  global const REAL *ap = pa + a_off, *bp = pb + b_off;
  global REAL *yp = py + y_off;
  for (int c = c0; c < c1; c++) MOVE(yp, c, cp[c] ? ap : bp, c);
}

kernel void where_bcast(global const uchar *pc, int c_off, global const REAL *pa, int a_off,
                        global const REAL *pb, int b_off, global REAL *py, int y_off, int n,
                        int ndim, int8 shape, int8 sc, int8 sa, int8 sb, int chunk) {
  int shp[8], stc[8], sta[8], stb[8];
  vstore8(shape, 0, shp);
  vstore8(sc, 0, stc);
  vstore8(sa, 0, sta);
  vstore8(sb, 0, stb);
  int inner = shp[ndim - 1], row, c0, c1;
  if (!chunk_of(get_global_id(0), n / inner, inner, chunk, &row, &c0, &c1)) return;
  int ic = c_off, ia = a_off, ib = b_off;
  row_base(row, ndim, shp, stc, sta, stb, &ic, &ia, &ib);
  global const uchar *cp = pc + ic;
  global const REAL *ap = pa + ia, *bp = pb + ib;
  global REAL *yp = py + y_off + row * inner;
  int tc = stc[ndim - 1], ta = sta[ndim - 1], tb = stb[ndim - 1];
  for (int c = c0; c < c1; c++) {
    if (cp[c * tc]) MOVE(yp, c, ap, c * ta);
    else MOVE(yp, c, bp, c * tb);
  }
}

/* ---- backward kernels (float programs only) -------------------------------- */
#ifdef LAM_FLOAT

/* unary_backward: dx = g * op'(x). The derivative is recomputed from x
 * rather than read from a saved output: the tape keeps one tensor per node,
 * and the extra exp/tanh per element is cheap next to three memory streams. */
kernel void unary_backward(global const REAL *px, int x_off, global const REAL *pg, int g_off,
                           global REAL *pdx, int dx_off, int n, int op, ACC p0, ACC p1,
                           int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const REAL *xp = px + x_off, *gp = pg + g_off;
  global REAL *dp = pdx + dx_off;
  switch (op) {
#define UNARY_BWD_LOOP(code, expr)          \
  case code:                                \
    for (int c = c0; c < c1; c++) {         \
      ACC x = LOAD(xp, c), g = LOAD(gp, c); \
      (void)x; /* unused by neg */          \
      STORE(dp, c, expr);                   \
    }                                       \
    break;
    UNARY_BWD_OPS(UNARY_BWD_LOOP)
#undef UNARY_BWD_LOOP
  default:
    for (int c = c0; c < c1; c++) STORE(dp, c, K(0.0));
    break;
  }
}

/* binary_backward: per output element, the contributions to a and b at the
 * output's shape (the host reduces each with lam__sum_to_shape). Bit 0 of
 * `want` writes ga, bit 1 gb; an unwanted buffer is never touched. Same
 * row/chunk split as binary_bcast; same-shape operands arrive as rank 1. */
kernel void binary_backward(global const REAL *pa, int a_off, global const REAL *pb, int b_off,
                            global const REAL *pg, int g_off, global REAL *pga, int ga_off,
                            global REAL *pgb, int gb_off, int n, int op, int ndim, int8 shape,
                            int8 sa, int8 sb, int want, int chunk) {
  int shp[8], sta[8], stb[8];
  vstore8(shape, 0, shp);
  vstore8(sa, 0, sta);
  vstore8(sb, 0, stb);
  int inner = shp[ndim - 1], row, c0, c1;
  if (!chunk_of(get_global_id(0), n / inner, inner, chunk, &row, &c0, &c1)) return;
  int ia = a_off, ib = b_off, unused = 0;
  row_base(row, ndim, shp, sta, stb, stb, &ia, &ib, &unused);
  int base = row * inner, ta = sta[ndim - 1], tb = stb[ndim - 1];
  global const REAL *ap = pa + ia, *bp = pb + ib, *gp = pg + g_off + base;
  global REAL *gap = pga + ga_off + base, *gbp = pgb + gb_off + base;
  for (int c = c0; c < c1; c++) {
    ACC da, db;
    binary_bwd(op, LOAD(ap, c * ta), LOAD(bp, c * tb), LOAD(gp, c), &da, &db);
    if (want & 1) STORE(gap, c, da);
    if (want & 2) STORE(gbp, c, db);
  }
}

/* scalar_backward: gradient of x op s (s op x when scalar_first) w.r.t. x. */
kernel void scalar_backward(global const REAL *px, int x_off, global const REAL *pg, int g_off,
                            global REAL *pdx, int dx_off, int n, int op, ACC s, int scalar_first,
                            int chunk) {
  int row, c0, c1;
  if (!chunk_of(get_global_id(0), 1, n, chunk, &row, &c0, &c1)) return;
  global const REAL *xp = px + x_off, *gp = pg + g_off;
  global REAL *dp = pdx + dx_off;
  for (int c = c0; c < c1; c++) {
    ACC da, db, xv = LOAD(xp, c);
    if (scalar_first) binary_bwd(op, s, xv, LOAD(gp, c), &da, &db);
    else binary_bwd(op, xv, s, LOAD(gp, c), &da, &db);
    STORE(dp, c, scalar_first ? db : da);
  }
}

/* where_backward: out = g where (cond != 0) == pick, else 0, with cond
 * broadcast onto g's shape through its strides sc. */
kernel void where_backward(global const uchar *pc, int c_off, global const REAL *pg, int g_off,
                           global REAL *pout, int out_off, int n, int ndim, int8 shape, int8 sc,
                           int pick, int chunk) {
  int shp[8], stc[8];
  vstore8(shape, 0, shp);
  vstore8(sc, 0, stc);
  int inner = shp[ndim - 1], row, c0, c1;
  if (!chunk_of(get_global_id(0), n / inner, inner, chunk, &row, &c0, &c1)) return;
  int ic = c_off, u1 = 0, u2 = 0;
  row_base(row, ndim, shp, stc, stc, stc, &ic, &u1, &u2);
  int base = row * inner, tc = stc[ndim - 1];
  global const uchar *cp = pc + ic;
  global const REAL *gp = pg + g_off + base;
  global REAL *outp = pout + out_off + base;
  for (int c = c0; c < c1; c++) STORE(outp, c, ((cp[c * tc] != 0) == pick) ? LOAD(gp, c) : (ACC)0);
}
#endif
