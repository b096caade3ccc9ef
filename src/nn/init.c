/* nn/init.c: parameter initializers (Kaun's Init with Flax's formulas).
 * An initializer is a plain value; lam_init_apply validates it, computes
 * PyTorch-layout fans and draws through the random family (uniform, normal,
 * truncated normal) on the device. Orthogonal init is the exception: its
 * QR factorisation runs on the host in f64 (Householder), on normals from
 * lam_random_normal_host so the result does not depend on the device; this
 * is O(rows * cols * min(rows, cols)), fine for layer-sized matrices. f16
 * parameters are drawn in f32 and cast. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/init.h"
#include "lamina/rng.h"

/* ---- constructors --------------------------------------------------------- */

static lam_init lam__init(lam_init_kind kind, double value) {
  lam_init i;
  memset(&i, 0, sizeof i);
  i.kind = kind;
  i.value = value;
  return i;
}

lam_init lam_init_zeros(void) { return lam__init(LAM_INIT_ZEROS, 0); }
lam_init lam_init_ones(void) { return lam__init(LAM_INIT_ONES, 1); }
lam_init lam_init_constant(double value) { return lam__init(LAM_INIT_CONSTANT, value); }
lam_init lam_init_uniform(double scale) { return lam__init(LAM_INIT_UNIFORM, scale); }
lam_init lam_init_normal(double stddev) { return lam__init(LAM_INIT_NORMAL, stddev); }
lam_init lam_init_orthogonal(double scale) { return lam__init(LAM_INIT_ORTHOGONAL, scale); }

lam_init lam_init_variance_scaling(double scale, lam_fan_mode mode,
                                   lam_init_distribution distribution) {
  lam_init i = lam__init(LAM_INIT_VARIANCE_SCALING, scale);
  i.mode = mode;
  i.distribution = distribution;
  return i;
}

lam_init lam_init_glorot_uniform(void) {
  return lam_init_variance_scaling(1.0, LAM_FAN_AVG, LAM_DIST_UNIFORM);
}
lam_init lam_init_glorot_normal(void) {
  return lam_init_variance_scaling(1.0, LAM_FAN_AVG, LAM_DIST_TRUNCATED_NORMAL);
}
lam_init lam_init_he_uniform(void) {
  return lam_init_variance_scaling(2.0, LAM_FAN_IN, LAM_DIST_UNIFORM);
}
lam_init lam_init_he_normal(void) {
  return lam_init_variance_scaling(2.0, LAM_FAN_IN, LAM_DIST_TRUNCATED_NORMAL);
}
lam_init lam_init_lecun_uniform(void) {
  return lam_init_variance_scaling(1.0, LAM_FAN_IN, LAM_DIST_UNIFORM);
}
lam_init lam_init_lecun_normal(void) {
  return lam_init_variance_scaling(1.0, LAM_FAN_IN, LAM_DIST_TRUNCATED_NORMAL);
}

lam_init lam_init_or(const lam_init *init, lam_init fallback) {
  return init && init->kind != LAM_INIT_DEFAULT ? *init : fallback;
}

lam_rng_key lam_init_key_for(lam_rng_key key, const char *param_path) {
  return lam_rng_fold_in_str(key, param_path);
}

/* ---- checks and fans -------------------------------------------------------- */

static const char *lam__init_kind_name(lam_init_kind k) {
  switch (k) {
    case LAM_INIT_DEFAULT: return "default";
    case LAM_INIT_ZEROS: return "zeros";
    case LAM_INIT_ONES: return "ones";
    case LAM_INIT_CONSTANT: return "constant";
    case LAM_INIT_UNIFORM: return "uniform";
    case LAM_INIT_NORMAL: return "normal";
    case LAM_INIT_VARIANCE_SCALING: return "variance_scaling";
    case LAM_INIT_ORTHOGONAL: return "orthogonal";
  }
  return "unknown";
}

static lam_status lam__init_check(const char *fn, const lam_init *init) {
  if (!init) return lam__fail(LAM_ERR_NULL, "%s: init is NULL", fn);
  switch (init->kind) {
    case LAM_INIT_DEFAULT:
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: init kind is LAM_INIT_DEFAULT (a zeroed lam_init); resolve it with "
                       "lam_init_or first", fn);
    case LAM_INIT_ZEROS:
    case LAM_INIT_ONES:
      return LAM_OK;
    case LAM_INIT_CONSTANT:
      if (!isfinite(init->value))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: constant value %g is not finite", fn,
                         init->value);
      return LAM_OK;
    case LAM_INIT_UNIFORM:
    case LAM_INIT_NORMAL:
    case LAM_INIT_ORTHOGONAL:
      break;
    case LAM_INIT_VARIANCE_SCALING:
      if ((int)init->mode < LAM_FAN_IN || init->mode > LAM_FAN_AVG)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                         "%s: unknown fan mode %d (LAM_FAN_IN, LAM_FAN_OUT or LAM_FAN_AVG)", fn,
                         (int)init->mode);
      if ((int)init->distribution < LAM_DIST_TRUNCATED_NORMAL ||
          init->distribution > LAM_DIST_UNIFORM)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                         "%s: unknown distribution %d (LAM_DIST_TRUNCATED_NORMAL, "
                         "LAM_DIST_NORMAL or LAM_DIST_UNIFORM)", fn, (int)init->distribution);
      break;
    default:
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown init kind %d", fn, (int)init->kind);
  }
  if (!isfinite(init->value) || init->value < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s scale %g must be finite and >= 0", fn,
                     lam__init_kind_name(init->kind), init->value);
  return LAM_OK;
}

lam_status lam_init_check(const lam_init *init) { return lam__init_check("lam_init_check", init); }

lam_status lam__init_check_opt(const char *fn, const char *field, const lam_init *init) {
  if (!init || init->kind == LAM_INIT_DEFAULT) return LAM_OK; /* the layer's default */
  char where[160];
  snprintf(where, sizeof where, "%s: %s", fn, field);
  return lam__init_check(where, init);
}

static void lam__fans(int ndim, const int64_t *shape, double *fan_in, double *fan_out) {
  double fi = 1, fo = 1;
  if (ndim == 1) {
    fi = fo = (double)shape[0];
  } else if (ndim >= 2) {
    double receptive = 1;
    for (int d = 2; d < ndim; d++) receptive *= (double)shape[d];
    fi = (double)shape[1] * receptive;
    fo = (double)shape[0] * receptive;
  }
  if (fan_in) *fan_in = fi;
  if (fan_out) *fan_out = fo;
}

lam_status lam_init_fans(int ndim, const int64_t *shape, double *fan_in, double *fan_out) {
  lam_status st = lam__check_shape("lam_init_fans", ndim, shape, NULL);
  if (st != LAM_OK) return st;
  lam__fans(ndim, shape, fan_in, fan_out);
  return LAM_OK;
}

/* ---- orthogonal ------------------------------------------------------------- */

/* Thin QR of the column-major m x n matrix a (m >= n) by Householder
 * reflections; overwrites a with Q (m x n) times sign(diag(R)) per column.
 * Returns 0, or -1 when out of host memory. */
static int lam__qr_q(double *a, int64_t m, int64_t n) {
  double *v = malloc((size_t)(m * n) * sizeof *v);   /* reflectors, column k from row k */
  double *beta = malloc((size_t)n * sizeof *beta);
  double *sign = malloc((size_t)n * sizeof *sign);
  if (!v || !beta || !sign) {
    free(v), free(beta), free(sign);
    return -1;
  }
  for (int64_t k = 0; k < n; k++) {
    double *ak = a + k * m, *vk = v + k * m;
    double norm = 0;
    for (int64_t i = k; i < m; i++) norm += ak[i] * ak[i];
    norm = sqrt(norm);
    double alpha = ak[k] >= 0 ? -norm : norm; /* R[k][k]; sign avoids cancellation */
    double vn = 0;
    for (int64_t i = k; i < m; i++) {
      vk[i] = ak[i] - (i == k ? alpha : 0);
      vn += vk[i] * vk[i];
    }
    beta[k] = vn > 0 ? 2 / vn : 0;
    sign[k] = alpha < 0 ? -1 : 1;
    for (int64_t j = k; j < n; j++) { /* apply H_k to the remaining columns */
      double *aj = a + j * m, s = 0;
      for (int64_t i = k; i < m; i++) s += vk[i] * aj[i];
      s *= beta[k];
      for (int64_t i = k; i < m; i++) aj[i] -= s * vk[i];
    }
  }
  /* Q = H_0 ... H_{n-1} [I; 0], built right to left in place of a. */
  memset(a, 0, (size_t)(m * n) * sizeof *a);
  for (int64_t j = 0; j < n; j++) a[j * m + j] = 1;
  for (int64_t k = n - 1; k >= 0; k--) {
    const double *vk = v + k * m;
    for (int64_t j = k; j < n; j++) { /* columns < k are still e_j, untouched by H_k */
      double *qj = a + j * m, s = 0;
      for (int64_t i = k; i < m; i++) s += vk[i] * qj[i];
      s *= beta[k];
      for (int64_t i = k; i < m; i++) qj[i] -= s * vk[i];
    }
  }
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < m; i++) a[j * m + i] *= sign[j];
  free(v), free(beta), free(sign);
  return 0;
}

static lam_tensor *lam__init_orthogonal(const char *fn, lam_ctx *ctx, lam_rng_key key,
                                        lam_dtype dtype, int ndim, const int64_t *shape,
                                        int64_t numel, double gain) {
  int64_t rows = shape[0], cols = numel / rows;
  int64_t m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
  double *a = malloc((size_t)numel * sizeof *a), *q = malloc((size_t)numel * sizeof *q);
  if (!a || !q) {
    free(a), free(q);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory for a %lld x %lld QR", fn,
                     (long long)rows, (long long)cols), NULL;
  }
  lam_random_normal_host(key, numel, a); /* the [rows, cols] normal matrix, row-major */
  /* Column-major M (m x n): A itself, or A^T when rows < cols (A row-major = A^T column-major). */
  if (rows >= cols) {
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) q[j * m + i] = a[i * cols + j];
  } else {
    memcpy(q, a, (size_t)numel * sizeof *q);
  }
  if (lam__qr_q(q, m, n) != 0) {
    free(a), free(q);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory for a %lld x %lld QR", fn,
                     (long long)rows, (long long)cols), NULL;
  }
  /* Back to row-major [rows, cols]: Q, or Q^T (= column-major Q read row-major). */
  if (rows >= cols) {
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) a[i * cols + j] = gain * q[j * m + i];
  } else {
    for (int64_t i = 0; i < numel; i++) a[i] = gain * q[i];
  }
  free(q);
  lam_tensor *t = NULL;
  if (dtype == LAM_F64) {
    t = lam_tensor_from_host(ctx, LAM_F64, ndim, shape, a);
  } else {
    float *f = malloc((size_t)numel * sizeof *f);
    if (f) {
      for (int64_t i = 0; i < numel; i++) f[i] = (float)a[i];
      t = lam_tensor_from_host(ctx, LAM_F32, ndim, shape, f);
      free(f);
    } else {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
  }
  free(a);
  return t;
}

/* ---- apply ------------------------------------------------------------------ */

/* Draws a random kind in `dt` (f32 or f64). */
static lam_tensor *lam__init_draw(const char *fn, const lam_init *init, lam_ctx *ctx,
                                  lam_rng_key key, lam_dtype dt, int ndim, const int64_t *shape,
                                  int64_t numel) {
  double v = init->value;
  switch (init->kind) {
    case LAM_INIT_UNIFORM:
      if (v == 0) return lam_tensor_zeros(ctx, dt, ndim, shape);
      return lam_random_uniform(ctx, key, dt, ndim, shape, 0, v);
    case LAM_INIT_NORMAL:
      return lam_random_normal(ctx, key, dt, ndim, shape, 0, v);
    case LAM_INIT_ORTHOGONAL:
      return lam__init_orthogonal(fn, ctx, key, dt, ndim, shape, numel, v);
    case LAM_INIT_VARIANCE_SCALING: {
      double fi, fo;
      lam__fans(ndim, shape, &fi, &fo);
      double den = init->mode == LAM_FAN_IN ? fi : init->mode == LAM_FAN_OUT ? fo : (fi + fo) / 2;
      double var = v / (den > 1 ? den : 1);
      switch (init->distribution) {
        case LAM_DIST_TRUNCATED_NORMAL:
          /* 0.8796...: stddev of N(0,1) truncated to [-2, 2] */
          return lam_random_truncated_normal(ctx, key, dt, ndim, shape, -2, 2,
                                             sqrt(var) / 0.87962566103423978);
        case LAM_DIST_NORMAL:
          return lam_random_normal(ctx, key, dt, ndim, shape, 0, sqrt(var));
        case LAM_DIST_UNIFORM: {
          double limit = sqrt(3 * var);
          if (limit == 0) return lam_tensor_zeros(ctx, dt, ndim, shape);
          return lam_random_uniform(ctx, key, dt, ndim, shape, -limit, limit);
        }
      }
      break;
    }
    default:
      break;
  }
  return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown init kind %d", fn, (int)init->kind), NULL;
}

lam_tensor *lam_init_apply(const lam_init *init, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                           int ndim, const int64_t *shape) {
  const char *fn = "lam_init_apply";
  if (lam__init_check(fn, init) != LAM_OK) return NULL;
  if (!ctx) return lam__fail(LAM_ERR_NULL, "%s: ctx is NULL", fn), NULL;
  int64_t numel;
  if (lam__check_shape(fn, ndim, shape, &numel) != LAM_OK) return NULL;
  if (lam__check_dtype_supported(ctx, dtype, fn) != LAM_OK) return NULL;
  switch (init->kind) {
    case LAM_INIT_ZEROS: return lam_tensor_zeros(ctx, dtype, ndim, shape);
    case LAM_INIT_ONES: return lam_tensor_full(ctx, dtype, ndim, shape, 1);
    case LAM_INIT_CONSTANT: return lam_tensor_full(ctx, dtype, ndim, shape, init->value);
    default: break;
  }
  if (!lam_dtype_is_float(dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: %s init needs a float dtype, got %s", fn,
                     lam__init_kind_name(init->kind), lam_dtype_name(dtype)), NULL;
  if (init->kind == LAM_INIT_ORTHOGONAL && ndim < 2) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: orthogonal init needs >= 2 dims; shape is %s", fn,
                     lam__shape_str(ndim, shape, b)), NULL;
  }
  lam_dtype dt = dtype == LAM_F16 ? LAM_F32 : dtype;
  lam_tensor *t = lam__init_draw(fn, init, ctx, key, dt, ndim, shape, numel);
  if (!t || dt == dtype) return t;
  lam_tensor *h = lam_tensor_cast(t, dtype);
  lam_tensor_free(t);
  return h;
}
