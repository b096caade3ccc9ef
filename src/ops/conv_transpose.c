/* ops/conv_transpose.c: conv_transpose1d/2d/3d and their backward rule.
 *
 * A transposed convolution of x [N, C, in...] with w [C, O/G, k...] is the
 * adjoint (input gradient) of the convolution that maps [N, O, out...] to
 * [N, C, in...] with the same weight, stride, dilation and padding, so it
 * reuses conv.c's primitives with the roles swapped: forward is that
 * convolution's bwd_data (col2im of W^T @ x, plus the bias), the input
 * gradient is its forward on dz, and the weight gradient its bwd_weight with
 * x in place of the output gradient. Output padding only lengthens the
 * output; taps that would land past the end are dropped by the kernels'
 * bounds, exactly as in PyTorch. */

#include "lamina/conv.h"
#include "ops/conv_internal.h"

static lam_status lam__convt_backward(lam__node *node, lam_tensor *gz, lam_tensor **gin) {
  lam__conv_geom g;
  lam__conv_geom_load(node->i, &g);
  lam_tensor *x = node->saved[0], *w = node->saved[1];
  if (lam__node_needs(node, 0) && !(gin[0] = lam__conv_fwd(gz, w, NULL, &g, node->op)))
    return lam_last_status();
  if (lam__node_needs(node, 1) && !(gin[1] = lam__conv_bwd_weight(x, gz, &g, node->op)))
    return lam_last_status();
  if (node->n_inputs > 2 && lam__node_needs(node, 2) && !(gin[2] = lam__conv_bias_grad(gz)))
    return lam_last_status();
  return LAM_OK;
}

static lam_tensor *lam__convt(int nsp, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                              const lam_conv_transpose_opts *o, const char *fn) {
  if (lam__conv_check_args(nsp, x, w, b, "[in, out/groups, k...]", fn) != LAM_OK) return NULL;
  lam_ctx *ctx = x->ctx;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  const int64_t G = o && o->groups ? o->groups : 1;
  if (G < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: groups %lld must be >= 1", fn, (long long)G), NULL;
  const int64_t C = x->shape[1], O = w->shape[1] * G;
  if (C % G != 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: in channels %lld must be divisible by groups %lld", fn,
                     (long long)C, (long long)G), NULL;
  if (w->shape[0] != C)
    return lam__fail(LAM_ERR_SHAPE, "%s: weight %s expects %lld input channels, x %s has %lld", fn,
                     lam__shape_str(w->ndim, w->shape, b1), (long long)w->shape[0],
                     lam__shape_str(x->ndim, x->shape, b2), (long long)C), NULL;
  if (b && (b->ndim != 1 || b->shape[0] != O))
    return lam__fail(LAM_ERR_SHAPE, "%s: bias must be [%lld], got %s", fn, (long long)O,
                     lam__shape_str(b->ndim, b->shape, b1)), NULL;
  /* The equivalent convolution maps z [N, O, out...] to x [N, C, in...]. */
  lam__conv_geom g;
  g.nsp = nsp, g.N = x->shape[0], g.C = O, g.O = C, g.G = G;
  for (int d = 0; d < 3; d++) g.in[d] = g.out[d] = g.k[d] = g.s[d] = g.d[d] = 1, g.pb[d] = 0;
  for (int i = 0; i < nsp; i++) {
    const int d = 3 - nsp + i;
    const int64_t k = w->shape[2 + i];
    const int s = o && o->stride[i] ? o->stride[i] : 1;
    const int dil = o && o->dilation[i] ? o->dilation[i] : 1;
    const int p = o ? o->padding[i] : 0;
    int op = o ? o->output_padding[i] : 0;
    const int64_t want = o ? o->output_size[i] : 0;
    if (want < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: output_size %lld of spatial dim %d must be >= 0 (0: from "
                       "output_padding)",
                       fn, (long long)want, i), NULL;
    if (want > 0 && s >= 1 && dil >= 1) {
      /* torch's ConvTransposeNd._output_padding: the sizes output_padding
       * 0 .. stride - 1 reach */
      const int64_t lo = (x->shape[2 + i] - 1) * s - 2 * (int64_t)p + (int64_t)dil * (k - 1) + 1;
      if (want < lo || want > lo + s - 1)
        return lam__fail(LAM_ERR_SHAPE,
                         "%s: requested output_size %lld of spatial dim %d, but valid sizes range "
                         "from %lld to %lld (for an input of %lld)",
                         fn, (long long)want, i, (long long)lo, (long long)(lo + s - 1),
                         (long long)x->shape[2 + i]), NULL;
      if (op != 0 && op != want - lo)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                         "%s: output_padding %d of spatial dim %d contradicts output_size %lld "
                         "(which needs output_padding %lld)",
                         fn, op, i, (long long)want, (long long)(want - lo)), NULL;
      op = (int)(want - lo);
    }
    if (s < 1 || dil < 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: stride %d and dilation %d of spatial dim %d must be >= 1", fn, s, dil,
                       i), NULL;
    if (p < 0 || op < 0 || (op >= s && op >= dil))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: padding %d must be >= 0 and output_padding %d in [0, max(stride %d, "
                       "dilation %d)) in spatial dim %d",
                       fn, p, op, s, dil, i), NULL;
    const int64_t out = (x->shape[2 + i] - 1) * s - 2 * (int64_t)p + (int64_t)dil * (k - 1) + op + 1;
    if (out < 1)
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: output size %lld of spatial dim %d is < 1 (input %lld, kernel %lld, "
                       "padding %d)",
                       fn, (long long)out, i, (long long)x->shape[2 + i], (long long)k, p), NULL;
    g.in[d] = out, g.out[d] = x->shape[2 + i], g.k[d] = k, g.s[d] = s, g.d[d] = dil, g.pb[d] = p;
  }
  int64_t zs[5], numel;
  lam__conv_shapes(&g, zs, NULL, NULL);
  if (lam__check_shape(fn, nsp + 2, zs, &numel) != LAM_OK) return NULL;

  const bool was = lam_grad_set_enabled(ctx, false);
  lam_tensor *z = lam__conv_bwd_data(x, w, b, &g, fn);
  lam_grad_set_enabled(ctx, was);
  if (!z) return NULL;
  lam__node *node = lam__tape_record(z, fn, lam__convt_backward, b ? 3 : 2,
                                     (lam_tensor *[]){x, w, b});
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, w);
    lam__conv_geom_save(node->i, &g);
  }
  return z;
}

lam_tensor *lam_conv_transpose1d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts) {
  return lam__convt(1, x, weight, bias, opts, "lam_conv_transpose1d");
}

lam_tensor *lam_conv_transpose2d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts) {
  return lam__convt(2, x, weight, bias, opts, "lam_conv_transpose2d");
}

lam_tensor *lam_conv_transpose3d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts) {
  return lam__convt(3, x, weight, bias, opts, "lam_conv_transpose3d");
}
