/* consumer/main.c: the smallest program an embedding app would write:
 * create a context, round-trip a tensor, check the values. */
#include <lamina.h>
#include <stdio.h>

int main(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "consumer: %s\n", lam_last_error());
    return 1;
  }
  float in[3] = {1, 2, 3}, out[3] = {0};
  int64_t shape[1] = {3};
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, shape, in);
  int ok = t && lam_tensor_to_host(t, out, sizeof out) == LAM_OK && out[0] == 1 && out[2] == 3;
  lam_tensor_free(t);
  lam_ctx_free(ctx);
  printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
