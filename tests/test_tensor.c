/* test_tensor.c (src/tensor.c, src/ops/tensor_views.c): tensor creation, round-trips for every dtype and odd
 * shapes, views, casts, and bad input on every tensor function. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int64_t odd_sizes[] = {1, 7, 1023, (1 << 20) + 3};

Test(tensor, roundtrip_every_dtype_odd_sizes) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32, LAM_U8, LAM_F16};
  tu_rng r = tu_rng_make(1);
  for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
    if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    for (size_t s = 0; s < 4; s++) {
      int64_t n = odd_sizes[s];
      size_t bytes = (size_t)n * lam_dtype_size(dts[d]);
      unsigned char *in = malloc(bytes), *out = malloc(bytes);
      for (size_t i = 0; i < bytes; i++) in[i] = (unsigned char)tu_next(&r);
      int64_t shape[1] = {n};
      lam_tensor *t = lam_tensor_from_host(ctx, dts[d], 1, shape, in);
      cr_assert(t, "%s", lam_last_error());
      cr_assert_eq(lam_tensor_numel(t), n);
      cr_assert_eq(lam_tensor_nbytes(t), bytes);
      cr_assert_eq(lam_tensor_to_host(t, out, bytes), LAM_OK);
      cr_assert(memcmp(in, out, bytes) == 0, "dtype %s size %lld", lam_dtype_name(dts[d]), (long long)n);
      lam_tensor_free(t);
      free(in);
      free(out);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(tensor, full_zeros_arange_scalar) {
  lam_ctx *ctx = tu_ctx();
  int64_t shape[3] = {3, 1, 5};
  lam_tensor *f = lam_tensor_full(ctx, LAM_F32, 3, shape, 2.5);
  float *x = tu_read_f32(f);
  for (int i = 0; i < 15; i++) cr_assert_eq(x[i], 2.5f);
  free(x);
  lam_tensor *z = lam_tensor_zeros_like(f);
  x = tu_read_f32(z);
  for (int i = 0; i < 15; i++) cr_assert_eq(x[i], 0.0f);
  free(x);
  lam_tensor *a = lam_tensor_arange(ctx, LAM_F32, 1, 4, 0.5);
  cr_assert_eq(lam_tensor_numel(a), 6);
  x = tu_read_f32(a);
  for (int i = 0; i < 6; i++) cr_assert_float_eq(x[i], 1 + 0.5f * i, 1e-6);
  free(x);
  lam_tensor *ai = lam_tensor_arange(ctx, LAM_I32, 10, 0, -3);
  int32_t iv[4];
  cr_assert_eq(lam_tensor_numel(ai), 4);
  lam_tensor_to_host(ai, iv, sizeof iv);
  cr_assert(iv[0] == 10 && iv[1] == 7 && iv[2] == 4 && iv[3] == 1);
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_I32, -7);
  double v;
  cr_assert_eq(lam_tensor_item(s, &v), LAM_OK);
  cr_assert_eq(v, -7);
  cr_assert_eq(lam_tensor_ndim(s), 0);
  lam_tensor *u8 = lam_tensor_full(ctx, LAM_U8, 1, (int64_t[]){33}, 200);
  lam_tensor *u8_row = lam_tensor_slice0(u8, 5, 6);
  cr_assert_eq(lam_tensor_item(u8_row, &v), LAM_OK);
  cr_assert_eq(v, 200);
  lam_tensor *all[] = {f, z, a, ai, s, u8_row, u8};
  for (size_t i = 0; i < 7; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

Test(tensor, cast_between_dtypes) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  float in[7] = {-2.7f, -1.0f, -0.5f, 0.0f, 0.5f, 3.9f, 200.25f};
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){7}, in);
  lam_tensor *i = lam_tensor_cast(t, LAM_I32);
  int32_t iv[7];
  cr_assert_eq(lam_tensor_to_host(i, iv, sizeof iv), LAM_OK, "%s", lam_last_error());
  for (int k = 0; k < 7; k++) cr_assert_eq(iv[k], (int32_t)in[k], "trunc toward zero at %d", k);
  lam_tensor *back = lam_tensor_cast(i, LAM_F32);
  float *fb = tu_read_f32(back);
  for (int k = 0; k < 7; k++) cr_assert_eq(fb[k], (float)(int32_t)in[k]);
  free(fb);
  if (lam_ctx_device(ctx)->fp64) {
    lam_tensor *d = lam_tensor_cast(t, LAM_F64);
    double *dv = tu_read_f64(d);
    for (int k = 0; k < 7; k++) cr_assert_eq(dv[k], (double)in[k]);
    free(dv);
    lam_tensor *d2 = lam_tensor_cast(d, LAM_F32);
    float *f2 = tu_read_f32(d2);
    for (int k = 0; k < 7; k++) cr_assert_eq(f2[k], in[k]);
    free(f2);
    lam_tensor_free(d);
    lam_tensor_free(d2);
  }
  lam_tensor *u = lam_tensor_cast(i, LAM_U8);
  uint8_t uv[7];
  lam_tensor_to_host(u, uv, sizeof uv);
  cr_assert_eq(uv[6], 200);
  lam_tensor_free(u);
  lam_tensor_free(t);
  lam_tensor_free(i);
  lam_tensor_free(back);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(tensor, views_share_buffer) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  float in[24];
  for (int i = 0; i < 24; i++) in[i] = (float)i;
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 3, (int64_t[]){4, 3, 2}, in);
  lam_tensor *r = lam_tensor_reshape(t, 2, (int64_t[]){-1, 6});
  cr_assert(r, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_dim(r, 0), 4);
  cr_assert_eq(lam_tensor_dim(r, -1), 6);
  lam_tensor *s = lam_tensor_slice0(t, 1, 3);
  cr_assert_eq(lam_tensor_dim(s, 0), 2);
  float *x = tu_read_f32(s);
  for (int i = 0; i < 12; i++) cr_assert_eq(x[i], (float)(6 + i));
  free(x);
  lam_tensor *c = lam_tensor_copy(s);
  x = tu_read_f32(c);
  cr_assert_eq(x[0], 6.0f);
  free(x);
  lam_stats st;
  lam_ctx_stats(ctx, &st);
  cr_assert_eq(st.live_tensors - m.tensors, 4);
  lam_tensor_free(t);
  lam_tensor_free(r);
  x = tu_read_f32(s); /* still valid after the parent handle is gone */
  cr_assert_eq(x[11], 17.0f);
  free(x);
  lam_tensor_free(s);
  lam_tensor_free(c);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(tensor, bad_inputs) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  float buf[4] = {0};
  int64_t shape[1] = {4};
  lam_error_clear();
  tu_assert_fails(lam_tensor_from_host(NULL, LAM_F32, 1, shape, buf), LAM_ERR_NULL, "ctx");
  tu_assert_fails(lam_tensor_from_host(ctx, LAM_F32, 1, shape, NULL), LAM_ERR_NULL, "data");
  tu_assert_fails(lam_tensor_from_host(ctx, LAM_F32, 1, NULL, buf), LAM_ERR_NULL, "shape");
  tu_assert_fails(lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){0}, buf), LAM_ERR_SHAPE, "dim 0");
  tu_assert_fails(lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){-3}, buf), LAM_ERR_SHAPE, "-3");
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  tu_assert_fails(lam_tensor_zeros(ctx, LAM_F32, 9, nine), LAM_ERR_SHAPE, "ndim 9");
  tu_assert_fails(lam_tensor_zeros(ctx, (lam_dtype)42, 1, shape), LAM_ERR_DTYPE, "dtype");
  /* Above the device's max allocation (but a valid shape). */
  uint64_t max = lam_ctx_device(ctx)->max_alloc_bytes;
  int64_t big[2] = {(int64_t)(max / 4 / 1024) + 16, 1024};
  if (big[0] * big[1] < 0x7fffffff)
    tu_assert_fails(lam_tensor_empty(ctx, LAM_F32, 2, big), LAM_ERR_OUT_OF_MEMORY, "max allocation");
  int64_t huge[2] = {1 << 16, 1 << 16};
  tu_assert_fails(lam_tensor_empty(ctx, LAM_U8, 2, huge), LAM_ERR_OUT_OF_MEMORY, "2^31");
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, shape, buf);
  tu_assert_status(lam_tensor_to_host(t, buf, 15), LAM_ERR_INVALID_ARGUMENT, "15 bytes");
  tu_assert_status(lam_tensor_to_host(t, NULL, 16), LAM_ERR_NULL, "dst");
  tu_assert_status(lam_tensor_to_host(NULL, buf, 16), LAM_ERR_NULL, "t");
  tu_assert_status(lam_tensor_write(t, buf, 17), LAM_ERR_INVALID_ARGUMENT, "17 bytes");
  double v;
  tu_assert_status(lam_tensor_item(t, &v), LAM_ERR_SHAPE, "4 elements");
  tu_assert_fails(lam_tensor_reshape(t, 2, (int64_t[]){3, -1}), LAM_ERR_SHAPE, "cannot reshape");
  tu_assert_fails(lam_tensor_reshape(t, 2, (int64_t[]){-1, -1}), LAM_ERR_SHAPE, NULL);
  tu_assert_fails(lam_tensor_slice0(t, 2, 2), LAM_ERR_SHAPE, "rows");
  tu_assert_fails(lam_tensor_slice0(t, 0, 5), LAM_ERR_SHAPE, "rows");
  tu_assert_fails(lam_tensor_arange(ctx, LAM_F32, 0, 1, 0), LAM_ERR_INVALID_ARGUMENT, "step");
  tu_assert_fails(lam_tensor_arange(ctx, LAM_F32, 1, 0, 1), LAM_ERR_SHAPE, "no elements");
  /* A NULL input keeps the first message (chains fail safely). */
  lam_error_clear();
  lam_tensor *bad = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){0});
  lam_tensor *chained = lam_tensor_cast(lam_tensor_reshape(bad, 1, shape), LAM_F64);
  cr_assert_null(chained);
  cr_assert(strstr(lam_last_error(), "lam_tensor_zeros") != NULL, "%s", lam_last_error());
  lam_error_clear();
  tu_assert_fails(lam_tensor_copy(NULL), LAM_ERR_NULL, "lam_tensor_copy");
  lam_tensor_free(NULL);
  lam_tensor_free(t);
  cr_assert_eq(lam_tensor_ndim(NULL), -1);
  cr_assert_eq(lam_tensor_numel(NULL), 0);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Regressions: element counts that overflow int64 in reshape, and fill values
 * that do not fit an integer dtype (undefined behaviour before). */
Test(tensor, reshape_overflow_and_fill_range) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *t = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){6});
  /* 6 * 7 * 0x6DB6DB6DB6DB6DB7 wraps to 6 in int64. */
  tu_assert_fails(lam_tensor_reshape(t, 3, (int64_t[]){6, 7, 0x6DB6DB6DB6DB6DB7LL}), LAM_ERR_SHAPE,
                  "cannot reshape");
  tu_assert_fails(lam_reshape(t, 3, (int64_t[]){-1, INT64_MAX, 2}), LAM_ERR_SHAPE, "cannot reshape");
  tu_assert_fails(lam_tensor_reshape(t, 2, (int64_t[]){INT64_MAX, -1}), LAM_ERR_SHAPE, NULL);
  lam_tensor *ok = lam_tensor_reshape(t, 3, (int64_t[]){3, -1, 1});
  cr_assert_not_null(ok, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_dim(ok, 1), 2);
  lam_tensor_free(ok);
  lam_tensor_free(t);
  const double bad_i32[] = {NAN, INFINITY, -INFINITY, 1e20, -1e20, 3e9, -2147483649.0};
  for (size_t i = 0; i < sizeof bad_i32 / sizeof *bad_i32; i++) {
    tu_assert_fails(lam_tensor_full(ctx, LAM_I32, 1, (int64_t[]){3}, bad_i32[i]),
                    LAM_ERR_INVALID_ARGUMENT, "lam_tensor_full");
    tu_assert_fails(lam_tensor_scalar(ctx, LAM_I32, bad_i32[i]), LAM_ERR_INVALID_ARGUMENT,
                    "lam_tensor_scalar");
  }
  const double bad_u8[] = {300, 256, -1, NAN};
  for (size_t i = 0; i < sizeof bad_u8 / sizeof *bad_u8; i++)
    tu_assert_fails(lam_tensor_full(ctx, LAM_U8, 1, (int64_t[]){2}, bad_u8[i]),
                    LAM_ERR_INVALID_ARGUMENT, "does not fit");
  lam_tensor *like = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){2});
  tu_assert_fails(lam_tensor_full_like(like, NAN), LAM_ERR_INVALID_ARGUMENT, "lam_tensor_full_like");
  /* In-range values truncate toward zero, as C and torch.full do. */
  lam_tensor *edge = lam_tensor_full(ctx, LAM_I32, 1, (int64_t[]){2}, -2147483648.5);
  cr_assert_not_null(edge, "%s", lam_last_error());
  int32_t got[2];
  cr_assert_eq(lam_tensor_to_host(edge, got, sizeof got), LAM_OK);
  cr_assert_eq(got[0], INT32_MIN);
  lam_tensor *u = lam_tensor_full(ctx, LAM_U8, 1, (int64_t[]){2}, 255.9);
  uint8_t gu[2];
  cr_assert_eq(lam_tensor_to_host(u, gu, sizeof gu), LAM_OK);
  cr_assert_eq(gu[1], 255);
  lam_tensor_free(u);
  lam_tensor_free(edge);
  lam_tensor_free(like);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
