/* bench/models.c: whole models, lamina beside PyTorch CPU in one run (issue 15):
 *   r18-1      ResNet-18 forward (evaluation), batch 1, 3x224x224
 *   r18-16     the same, batch 16
 *   r18-train8 ResNet-18 train step, batch 8: forward in training mode, cross
 *              entropy, backward, SGD (lr 0.01, momentum 0.9)
 *   bert-1     a 6-layer BERT encoder with all-MiniLM-L6-v2's shapes (hidden 384,
 *              12 heads, intermediate 1536, vocab 30522), batch 1 x seq 128
 *   bert-32    the same, batch 32 x seq 128
 * Both sides use random weights of the same shapes. lamina runs the model zoo
 * (lam_models_resnet(18), lam_models_bert with no pooler) through
 * lam_layer_apply / lam_train_step; its evaluation rows first call
 * lam_models_resnet_fuse (batch norm folded into the convolutions; --no-fuse
 * skips it). PyTorch runs the same structures in a child /usr/bin/python3
 * (the script is embedded below): ResNet-18 written out in torch.nn
 * (torchvision's structure, so torchvision is not needed), the encoder as
 * Hugging Face's BertModel computes it (post-LN, erf GELU,
 * F.scaled_dot_product_attention where torch has it) under torch.no_grad()
 * and eval(), with torch.set_num_threads(--threads, default 2). The child runs
 * with PYTHONPATH=/usr/lib/python3/dist-packages (--torch-path DIR; "" keeps
 * python's own path): Debian's PyTorch 1.13 there is the reference and,
 * on the development machine, several times faster on these shapes than the
 * pip-installed torch 2.x found first on python's default path.
 *
 * Rounds alternate: each round runs PyTorch's child (reps timings per row
 * after 2 warm-ups) and then lamina (the same). Every timing is kept; the
 * table gives the best and the median over all rounds and the ratios
 * lamina / PyTorch of both (lower is better; < 1: lamina is faster). The
 * development machines are shared: give the load average with the figures.
 *
 * --profile runs lamina only and prints where the time goes: each leaf
 * layer (ResNet) or op (BERT: the encoder block's ops re-run one by one with
 * the model's own parameters) is timed with lam_ctx_finish around it and the
 * times are summed per op family.
 *
 * Usage: bench_models [--reps N] [--rounds R] [--threads T] [--rows a,b,...]
 *                     [--quick] [--no-torch] [--torch-path DIR] [--no-fuse] [--profile]
 *   --quick  rows r18-1 and bert-1, 2 reps, 2 rounds. LAMINA_DEVICE picks the device. */
#define _POSIX_C_SOURCE 200809L
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define MAXS 256

typedef struct row {
  const char *name, *desc;
  int kind; /* 0 resnet eval, 1 resnet train, 2 bert eval */
  int batch;
  int on;
  double lam[MAXS], pt[MAXS];
  int nlam, npt;
} row;

static row rows[] = {
    {"r18-1", "ResNet-18 forward, batch 1, 224x224", 0, 1, 1, {0}, {0}, 0, 0},
    {"r18-16", "ResNet-18 forward, batch 16", 0, 16, 1, {0}, {0}, 0, 0},
    {"r18-train8", "ResNet-18 train step (SGD momentum), batch 8", 1, 8, 1, {0}, {0}, 0, 0},
    {"bert-1", "BERT encoder (MiniLM-L6 shapes), batch 1 x seq 128", 2, 1, 1, {0}, {0}, 0, 0},
    {"bert-32", "BERT encoder (MiniLM-L6 shapes), batch 32 x seq 128", 2, 32, 1, {0}, {0}, 0, 0},
};
#define NROWS ((int)(sizeof rows / sizeof *rows))

enum { SEQ = 128, HIDDEN = 384, HEADS = 12, INTER = 1536, LAYERS = 6, VOCAB = 30522 };

static void push(double *a, int *n, double v) {
  if (*n < MAXS) a[(*n)++] = v;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double best(const double *a, int n) {
  double b = 1e30;
  for (int i = 0; i < n; i++) b = a[i] < b ? a[i] : b;
  return n ? b : -1;
}

static double median(const double *a, int n) {
  if (!n) return -1;
  double t[MAXS];
  memcpy(t, a, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmpd);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---- lamina models -------------------------------------------------------------- */

typedef struct models {
  lam_ctx *ctx;
  lam_layer *r18, *bert;
  lam_vars *r18_vars, *r18_train_vars, *bert_vars;
  lam_optimizer *sgd;
  int fuse;
} models;

static int fail(const char *what) {
  fprintf(stderr, "bench_models: %s: %s\n", what, lam_last_error());
  return -1;
}

static int models_make(models *m, int need_resnet, int need_train, int need_bert) {
  lam_rng_key key = lam_rng_key_make(1);
  if (need_resnet || need_train) {
    m->r18 = lam_models_resnet(18, NULL);
    if (!m->r18) return fail("lam_models_resnet");
  }
  if (need_resnet) {
    if (lam_layer_init(m->r18, m->ctx, key, LAM_F32, &m->r18_vars) != LAM_OK) return fail("init r18");
    if (m->fuse && lam_models_resnet_fuse(m->r18, m->r18_vars) != LAM_OK)
      return fail("lam_models_resnet_fuse");
  }
  if (need_train) {
    if (lam_layer_init(m->r18, m->ctx, key, LAM_F32, &m->r18_train_vars) != LAM_OK)
      return fail("init r18 (train)");
    lam_sgd_opts so = lam_sgd_defaults();
    so.lr = 0.01, so.momentum = 0.9;
    m->sgd = lam_sgd(&so);
    if (!m->sgd) return fail("lam_sgd");
  }
  if (need_bert) {
    lam_models_bert_opts bo = lam_models_bert_defaults();
    bo.hidden_size = HIDDEN, bo.num_hidden_layers = LAYERS, bo.num_attention_heads = HEADS;
    bo.intermediate_size = INTER, bo.vocab_size = VOCAB, bo.no_pooler = true;
    m->bert = lam_models_bert(&bo);
    if (!m->bert) return fail("lam_models_bert");
    if (lam_layer_init(m->bert, m->ctx, key, LAM_F32, &m->bert_vars) != LAM_OK) return fail("init bert");
  }
  return 0;
}

static void models_free(models *m) {
  lam_vars_free(m->r18_vars), lam_vars_free(m->r18_train_vars), lam_vars_free(m->bert_vars);
  lam_layer_free(m->r18), lam_layer_free(m->bert);
  lam_optimizer_free(m->sgd);
}

static lam_tensor *make_input(models *m, const row *r) {
  lam_rng_key key = lam_rng_key_make(2);
  if (r->kind == 2)
    return lam_random_randint(m->ctx, key, 0, VOCAB, 2, (int64_t[]){r->batch, SEQ});
  return lam_random_normal(m->ctx, key, LAM_F32, 4, (int64_t[]){r->batch, 3, 224, 224}, 0, 1);
}

/* One timed run of row r on x (labels for the train step). */
static int run_once(models *m, const row *r, lam_tensor *x, lam_tensor *labels, double *dt) {
  lam_tensor *y = NULL;
  double t0 = now();
  lam_status st;
  if (r->kind == 0) st = lam_layer_apply(m->r18, m->r18_vars, x, NULL, &y);
  else if (r->kind == 2) st = lam_layer_apply(m->bert, m->bert_vars, x, NULL, &y);
  else st = lam_train_step(m->r18, m->r18_train_vars, m->sgd, x, labels, NULL, NULL);
  if (st == LAM_OK) st = lam_ctx_finish(m->ctx);
  *dt = now() - t0;
  lam_tensor_free(y);
  return st == LAM_OK ? 0 : fail(r->name);
}

static int time_lamina(models *m, row *r, int reps) {
  lam_tensor *x = make_input(m, r);
  lam_tensor *labels = r->kind == 1 ? lam_random_randint(m->ctx, lam_rng_key_make(3), 0, 1000, 1,
                                                         (int64_t[]){r->batch})
                                    : NULL;
  if (!x || (r->kind == 1 && !labels)) return fail("inputs");
  int rc = 0;
  for (int rep = -2; rep < reps && rc == 0; rep++) {
    double dt;
    rc = run_once(m, r, x, labels, &dt);
    if (rc == 0 && rep >= 0) push(r->lam, &r->nlam, dt);
  }
  lam_tensor_free(x), lam_tensor_free(labels);
  return rc;
}

/* ---- profile -------------------------------------------------------------------- */

#define MAXF 32
typedef struct prof {
  const char *fam[MAXF];
  double t[MAXF];
  int calls[MAXF], n;
} prof;

static void prof_add(prof *p, const char *fam, double dt) {
  int i = 0;
  while (i < p->n && strcmp(p->fam[i], fam) != 0) i++;
  if (i == p->n) {
    if (p->n == MAXF) return;
    p->fam[p->n] = fam, p->t[p->n] = 0, p->calls[p->n++] = 0;
  }
  p->t[i] += dt, p->calls[i]++;
}

static void prof_print(const prof *p, const char *title, double total) {
  double sum = 0;
  for (int i = 0; i < p->n; i++) sum += p->t[i];
  printf("\n%s: %.2f ms whole model (one lam_ctx_finish), %.2f ms op by op\n\n", title, total * 1e3,
         sum * 1e3);
  printf("| %-28s | %5s | %9s | %5s |\n", "op family", "calls", "ms", "share");
  printf("|------------------------------|------:|----------:|------:|\n");
  int order[MAXF];
  for (int i = 0; i < p->n; i++) order[i] = i;
  for (int i = 0; i < p->n; i++)
    for (int j = i + 1; j < p->n; j++)
      if (p->t[order[j]] > p->t[order[i]]) {
        int t = order[i];
        order[i] = order[j], order[j] = t;
      }
  for (int k = 0; k < p->n; k++) {
    int i = order[k];
    printf("| %-28s | %5d | %9.2f | %4.0f%% |\n", p->fam[i], p->calls[i], p->t[i] * 1e3,
           100 * p->t[i] / sum);
  }
}

/* Runs f's result through lam_ctx_finish and adds its time to family fam. */
#define TIMED(p, ctx, fam, expr)                     \
  ({                                                 \
    lam_ctx_finish(ctx);                             \
    double t0_ = now();                              \
    __typeof__(expr) r_ = (expr);                    \
    lam_ctx_finish(ctx);                             \
    prof_add((p), (fam), now() - t0_);               \
    r_;                                              \
  })

/* The ResNet walk: chains of children applied one by one (basic blocks with
 * their residual add and ReLU); leaves timed under their layer name (convs
 * split by kernel size). */
static lam_tensor *prof_resnet(prof *p, lam_ctx *ctx, lam_layer *l, lam_ptree *params,
                               lam_ptree *state, lam_tensor *x, const char *key, int fused);

static lam_tensor *prof_apply(prof *p, lam_ctx *ctx, lam_layer *l, const char *key, lam_ptree *params,
                              lam_ptree *state, lam_tensor *x, int fused) {
  if (lam_layer_child_count(l) > 0) {
    lam_ptree *ps = lam_ptree_subtree(params, key), *ss = lam_ptree_subtree(state, key);
    return prof_resnet(p, ctx, l, ps, ss, x, key, fused);
  }
  const char *fam = lam_layer_name(l);
  if (!strcmp(fam, "conv2d")) {
    lam_ptree *ps = lam_ptree_subtree(params, key);
    lam_tensor *w = ps ? lam_ptree_get(ps, "weight") : NULL;
    int k = w ? (int)lam_tensor_shape(w)[2] : 0;
    fam = k == 7 ? "conv 7x7" : k == 3 ? "conv 3x3" : k == 1 ? "conv 1x1" : "conv";
  }
  lam_tensor *y = NULL;
  lam_ctx_finish(ctx);
  double t0 = now();
  lam_status st = lam_layer_apply_child(l, key, params, state, x, NULL, &y);
  lam_ctx_finish(ctx);
  prof_add(p, fam, now() - t0);
  return st == LAM_OK ? y : NULL;
}

static lam_tensor *prof_resnet(prof *p, lam_ctx *ctx, lam_layer *l, lam_ptree *params,
                               lam_ptree *state, lam_tensor *x, const char *key, int fused) {
  (void)key;
  const int n = lam_layer_child_count(l);
  const int block = !strcmp(lam_layer_name(l), "basic_block");
  if (block && fused) { /* the fused block is one unit: time it whole */
    lam_tensor *y = NULL;
    lam_ctx_finish(ctx);
    double t0 = now();
    lam_status st = lam_layer_apply_with(l, params, state, x, NULL, &y);
    lam_ctx_finish(ctx);
    prof_add(p, "basic block (fused)", now() - t0);
    return st == LAM_OK ? y : NULL;
  }
  lam_tensor *h = lam_tensor_retain(x), *sc = NULL;
  for (int i = 0; i < n && h; i++) {
    const char *k = lam_layer_child_key(l, i);
    lam_layer *c = lam_layer_child(l, i);
    if (block && !strcmp(k, "downsample")) {
      sc = prof_apply(p, ctx, c, k, params, state, x, fused);
      continue;
    }
    lam_tensor *y = prof_apply(p, ctx, c, k, params, state, h, fused);
    lam_tensor_free(h);
    h = y;
  }
  if (block && h) {
    lam_tensor *s = TIMED(p, ctx, "add (residual)", lam_add(h, sc ? sc : x));
    lam_tensor_free(h);
    h = s ? TIMED(p, ctx, "relu", lam_relu(s)) : NULL;
    lam_tensor_free(s);
  }
  lam_tensor_free(sc);
  return h;
}

/* One BERT encoder block op by op with the model's parameters of layer li. */
static lam_tensor *lin(prof *p, lam_ctx *ctx, lam_ptree *params, const char *path, lam_tensor *x,
                       const char *fam) {
  char b[160];
  snprintf(b, sizeof b, "%s.weight", path);
  lam_tensor *w = lam_ptree_get(params, b);
  snprintf(b, sizeof b, "%s.bias", path);
  lam_tensor *bias = lam_ptree_get(params, b);
  lam_tensor *y = TIMED(p, ctx, fam, lam_matmul_t(x, w, 0, 1));
  lam_tensor *yb = TIMED(p, ctx, "linear bias add", lam_add(y, bias));
  lam_tensor_free(y);
  return yb;
}

static lam_tensor *ln(prof *p, lam_ctx *ctx, lam_ptree *params, const char *path, lam_tensor *x) {
  char b[160];
  snprintf(b, sizeof b, "%s.weight", path);
  lam_tensor *w = lam_ptree_get(params, b);
  snprintf(b, sizeof b, "%s.bias", path);
  lam_tensor *bias = lam_ptree_get(params, b);
  return TIMED(p, ctx, "layer norm", lam_layer_norm(x, 1, w, bias, 1e-12));
}

static lam_tensor *heads(prof *p, lam_ctx *ctx, lam_tensor *x, int merge) {
  const int64_t *s = lam_tensor_shape(x);
  if (merge) { /* [b, h, s, d] -> [b, s, h*d] */
    lam_tensor *t = TIMED(p, ctx, "head split/merge", lam_transpose(x, 1, 2));
    lam_tensor *c = TIMED(p, ctx, "head split/merge", lam_contiguous(t));
    lam_tensor *r = lam_reshape(c, 3, (int64_t[]){s[0], s[2], s[1] * s[3]});
    lam_tensor_free(t), lam_tensor_free(c);
    return r;
  }
  lam_tensor *r = lam_reshape(x, 4, (int64_t[]){s[0], s[1], HEADS, s[2] / HEADS});
  lam_tensor *t = TIMED(p, ctx, "head split/merge", lam_transpose(r, 1, 2));
  lam_tensor *c = TIMED(p, ctx, "head split/merge", lam_contiguous(t));
  lam_tensor_free(r), lam_tensor_free(t);
  return c;
}

static lam_tensor *prof_bert_block(prof *p, lam_ctx *ctx, lam_ptree *params, int li, lam_tensor *h) {
  char base[96], b[160];
  snprintf(base, sizeof base, "encoder.layer.%d", li);
#define P(suffix) (snprintf(b, sizeof b, "%s.%s", base, suffix), b)
  lam_tensor *q = lin(p, ctx, params, P("attention.self.query"), h, "linear q/k/v");
  lam_tensor *k = lin(p, ctx, params, P("attention.self.key"), h, "linear q/k/v");
  lam_tensor *v = lin(p, ctx, params, P("attention.self.value"), h, "linear q/k/v");
  lam_tensor *qh = heads(p, ctx, q, 0), *kh = heads(p, ctx, k, 0), *vh = heads(p, ctx, v, 0);
  lam_tensor *a = TIMED(p, ctx, "attention (sdpa)", lam_scaled_dot_product_attention(qh, kh, vh, NULL));
  lam_tensor *am = heads(p, ctx, a, 1);
  lam_tensor *ao = lin(p, ctx, params, P("attention.output.dense"), am, "linear attn out");
  lam_tensor *s1 = TIMED(p, ctx, "add (residual)", lam_add(ao, h));
  lam_tensor *h1 = ln(p, ctx, params, P("attention.output.LayerNorm"), s1);
  lam_tensor *i1 = lin(p, ctx, params, P("intermediate.dense"), h1, "linear intermediate");
  lam_tensor *g = TIMED(p, ctx, "gelu", lam_gelu(i1));
  lam_tensor *o = lin(p, ctx, params, P("output.dense"), g, "linear output");
  lam_tensor *s2 = TIMED(p, ctx, "add (residual)", lam_add(o, h1));
  lam_tensor *h2 = ln(p, ctx, params, P("output.LayerNorm"), s2);
#undef P
  lam_tensor *all[] = {q, k, v, qh, kh, vh, a, am, ao, s1, h1, i1, g, o, s2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) lam_tensor_free(all[i]);
  return h2;
}

static int profile_row(models *m, row *r, int reps) {
  lam_tensor *x = make_input(m, r);
  if (!x) return fail("inputs");
  double whole = 1e30;
  for (int rep = -1; rep < reps; rep++) {
    double dt;
    if (run_once(m, r, x, NULL, &dt) != 0) return -1;
    if (rep >= 0 && dt < whole) whole = dt;
  }
  prof best_p = {0};
  double best_sum = 1e30;
  for (int rep = -1; rep < reps; rep++) {
    prof p = {0};
    lam_tensor *y = NULL;
    if (r->kind == 0) {
      y = prof_resnet(&p, m->ctx, m->r18, lam_vars_params(m->r18_vars), lam_vars_state(m->r18_vars), x,
                      "", m->fuse);
    } else {
      /* The embeddings as one unit (the model's own code), then the blocks op by op. */
      lam_ptree *params = lam_vars_params(m->bert_vars);
      lam_tensor *w = lam_ptree_get(params, "embeddings.word_embeddings.weight");
      lam_tensor *h = TIMED(&p, m->ctx, "embeddings", lam_take(w, x, 0));
      for (int li = 0; li < LAYERS && h; li++) {
        lam_tensor *n = prof_bert_block(&p, m->ctx, params, li, h);
        lam_tensor_free(h);
        h = n;
      }
      y = h;
    }
    if (!y) return fail("profile");
    lam_tensor_free(y);
    double sum = 0;
    for (int i = 0; i < p.n; i++) sum += p.t[i];
    if (rep >= 0 && sum < best_sum) best_sum = sum, best_p = p;
  }
  char title[160];
  snprintf(title, sizeof title, "profile %s (%s)", r->name, r->desc);
  prof_print(&best_p, title, whole);
  lam_tensor_free(x);
  return 0;
}

/* ---- PyTorch ---------------------------------------------------------------------- */

static const char torch_script[] =
    "import sys, time, math\n"
    "try:\n"
    "    import torch\n"
    "    import torch.nn as nn\n"
    "    import torch.nn.functional as F\n"
    "except Exception as e:\n"
    "    print('E no torch: %s' % e)\n"
    "    sys.exit(0)\n"
    "reps, threads = int(sys.argv[1]), int(sys.argv[2])\n"
    "torch.set_num_threads(threads)\n"
    "print('V torch %s, %d threads, mkldnn %s' % (torch.__version__, torch.get_num_threads(),\n"
    "      torch.backends.mkldnn.is_available()))\n"
    "sys.stdout.flush()\n"
    "torch.manual_seed(0)\n"
    "class Block(nn.Module):\n"
    "    def __init__(s, i, o, st):\n"
    "        super().__init__()\n"
    "        s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)\n"
    "        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)\n"
    "        s.down = None\n"
    "        if st != 1 or i != o:\n"
    "            s.down = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))\n"
    "    def forward(s, x):\n"
    "        y = F.relu(s.bn1(s.conv1(x)))\n"
    "        y = s.bn2(s.conv2(y))\n"
    "        return F.relu(y + (s.down(x) if s.down is not None else x))\n"
    "class ResNet18(nn.Module):\n"
    "    def __init__(s):\n"
    "        super().__init__()\n"
    "        s.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False); s.bn1 = nn.BatchNorm2d(64)\n"
    "        L = []; i = 64\n"
    "        for st, o in enumerate([64, 128, 256, 512]):\n"
    "            L += [Block(i, o, 1 if st == 0 else 2), Block(o, o, 1)]; i = o\n"
    "        s.layers = nn.Sequential(*L); s.fc = nn.Linear(512, 1000)\n"
    "    def forward(s, x):\n"
    "        x = F.max_pool2d(F.relu(s.bn1(s.conv1(x))), 3, 2, 1)\n"
    "        x = s.layers(x)\n"
    "        return s.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))\n"
    "class BertLayer(nn.Module):\n"
    "    def __init__(s, h, nh, inter):\n"
    "        super().__init__()\n"
    "        s.nh = nh; s.q = nn.Linear(h, h); s.k = nn.Linear(h, h); s.v = nn.Linear(h, h)\n"
    "        s.ao = nn.Linear(h, h); s.ln1 = nn.LayerNorm(h, eps=1e-12)\n"
    "        s.i = nn.Linear(h, inter); s.o = nn.Linear(inter, h); s.ln2 = nn.LayerNorm(h, eps=1e-12)\n"
    "    def forward(s, x):\n"
    "        b, n, h = x.shape; d = h // s.nh\n"
    "        sp = lambda t: t.view(b, n, s.nh, d).transpose(1, 2)\n"
    "        q, k, v = sp(s.q(x)), sp(s.k(x)), sp(s.v(x))\n"
    "        if hasattr(F, 'scaled_dot_product_attention'):\n"
    "            a = F.scaled_dot_product_attention(q, k, v)\n"
    "        else:\n"
    "            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ v\n"
    "        a = a.transpose(1, 2).reshape(b, n, h)\n"
    "        x = s.ln1(s.ao(a) + x)\n"
    "        return s.ln2(s.o(F.gelu(s.i(x))) + x)\n"
    "class Bert(nn.Module):\n"
    "    def __init__(s, vocab, h, nl, nh, inter):\n"
    "        super().__init__()\n"
    "        s.we = nn.Embedding(vocab, h); s.pe = nn.Embedding(512, h); s.te = nn.Embedding(2, h)\n"
    "        s.ln = nn.LayerNorm(h, eps=1e-12)\n"
    "        s.layers = nn.ModuleList([BertLayer(h, nh, inter) for _ in range(nl)])\n"
    "    def forward(s, ids):\n"
    "        n = ids.shape[1]; pos = torch.arange(n)\n"
    "        x = s.ln(s.we(ids) + s.pe(pos) + s.te(torch.zeros_like(ids)))\n"
    "        for l in s.layers: x = l(x)\n"
    "        return x\n"
    "def timeit(f):\n"
    "    ts = []\n"
    "    for r in range(reps + 2):\n"
    "        t0 = time.perf_counter(); f(); dt = time.perf_counter() - t0\n"
    "        if r >= 2: ts.append(dt)\n"
    "    return ts\n"
    "for spec in sys.argv[3:]:\n"
    "    name, kind, batch = spec.split(',')\n"
    "    kind, batch = int(kind), int(batch)\n"
    "    if kind == 0:\n"
    "        m = ResNet18().eval(); x = torch.randn(batch, 3, 224, 224)\n"
    "        def f():\n"
    "            with torch.no_grad(): m(x)\n"
    "    elif kind == 1:\n"
    "        m = ResNet18().train(); x = torch.randn(batch, 3, 224, 224)\n"
    "        y = torch.randint(0, 1000, (batch,))\n"
    "        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)\n"
    "        def f():\n"
    "            opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()\n"
    "    else:\n"
    "        m = Bert(30522, 384, 6, 12, 1536).eval(); x = torch.randint(0, 30522, (batch, 128))\n"
    "        def f():\n"
    "            with torch.no_grad(): m(x)\n"
    "    ts = timeit(f)\n"
    "    print('T %s %s' % (name, ' '.join('%.6f' % t for t in ts)))\n"
    "    sys.stdout.flush()\n";

/* Runs the script on the rows that are on; appends their timings. Returns 0 or -1. */
static const char *torch_path = "/usr/lib/python3/dist-packages";

static int time_torch(int reps, int threads, char *version, size_t vcap) {
  char path[] = "/tmp/lamina_bench_models_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    return -1;
  }
  fputs(torch_script, f);
  fclose(f);
  char cmd[1024];
  int len = *torch_path ? snprintf(cmd, sizeof cmd, "PYTHONPATH=%s /usr/bin/python3 %s %d %d", torch_path, path,
                                   reps, threads)
                        : snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %d %d", path, reps, threads);
  for (int i = 0; i < NROWS; i++)
    if (rows[i].on)
      len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s,%d,%d", rows[i].name, rows[i].kind,
                      rows[i].batch);
  snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>/dev/null");
  FILE *p = popen(cmd, "r");
  int got = 0;
  if (p) {
    char line[4096];
    while (fgets(line, sizeof line, p)) {
      if (line[0] == 'T') {
        char name[64];
        int off = 0;
        if (sscanf(line + 2, "%63s%n", name, &off) != 1) continue;
        for (int i = 0; i < NROWS; i++) {
          if (strcmp(rows[i].name, name) != 0) continue;
          char *s = line + 2 + off, *end;
          for (double v = strtod(s, &end); end != s; s = end, v = strtod(s, &end))
            push(rows[i].pt, &rows[i].npt, v);
          got++;
        }
      } else if (line[0] == 'V' || line[0] == 'E') {
        line[strcspn(line, "\n")] = 0;
        size_t n = strlen(line + 2);
        if (n >= vcap) n = vcap - 1;
        memcpy(version, line + 2, n);
        version[n] = 0;
      }
    }
    pclose(p);
  }
  unlink(path);
  return got > 0 ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------------- */

static void fmt(char *b, size_t cap, double v, double scale) {
  if (v < 0) snprintf(b, cap, "n/a");
  else snprintf(b, cap, "%.1f", v * scale);
}

static void fmt_ratio(char *b, size_t cap, double a, double c) {
  if (a < 0 || c <= 0) snprintf(b, cap, "n/a");
  else snprintf(b, cap, "%.2f", a / c);
}

int main(int argc, char **argv) {
  int reps = 3, rounds = 3, threads = 2, torch = 1, fuse = 1, profile = 0;
  const char *sel = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rows") && i + 1 < argc) sel = argv[++i];
    else if (!strcmp(argv[i], "--quick")) sel = "r18-1,bert-1", reps = 2, rounds = 2;
    else if (!strcmp(argv[i], "--no-torch")) torch = 0;
    else if (!strcmp(argv[i], "--torch-path") && i + 1 < argc) torch_path = argv[++i];
    else if (!strcmp(argv[i], "--no-fuse")) fuse = 0;
    else if (!strcmp(argv[i], "--profile")) profile = 1;
    else {
      fprintf(stderr,
              "usage: %s [--reps N] [--rounds R] [--threads T] [--rows r18-1,r18-16,r18-train8,bert-1,"
              "bert-32] [--quick] [--no-torch] [--torch-path DIR] [--no-fuse] [--profile]\n",
              argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  if (rounds < 1) rounds = 1;
  if (reps * rounds > MAXS) reps = MAXS / rounds;
  if (sel) {
    for (int i = 0; i < NROWS; i++) {
      const char *s = sel;
      size_t n = strlen(rows[i].name);
      rows[i].on = 0;
      while ((s = strstr(s, rows[i].name)) != NULL) {
        if ((s == sel || s[-1] == ',') && (s[n] == 0 || s[n] == ',')) rows[i].on = 1;
        s += n;
      }
    }
  }
  models m = {0};
  m.fuse = fuse;
  if (lam_ctx_create(NULL, &m.ctx) != LAM_OK) return fail("lam_ctx_create"), 1;
  int need[3] = {0, 0, 0};
  for (int i = 0; i < NROWS; i++)
    if (rows[i].on) need[rows[i].kind] = 1;
  if (profile) need[1] = 0;
  if (models_make(&m, need[0], need[1], need[2]) != 0) return 1;
  const lam_device_info *dev = lam_ctx_device(m.ctx);
  double la[3] = {-1, -1, -1};
  FILE *lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = -1;
    fclose(lf);
  }
  if (profile) {
    printf("device: %s (%s), %u compute units; load average %.2f %.2f %.2f; best of %d; %s\n", dev->name,
           dev->platform_name, dev->compute_units, la[0], la[1], la[2], reps,
           fuse ? "batch norm folded (lam_models_resnet_fuse)" : "no fusion (--no-fuse)");
    for (int i = 0; i < NROWS; i++)
      if (rows[i].on && rows[i].kind != 1 && profile_row(&m, &rows[i], reps) != 0) return 1;
    models_free(&m);
    lam_ctx_free(m.ctx);
    return 0;
  }
  char version[256] = "not run";
  for (int round = 0; round < rounds; round++) {
    if (torch && time_torch(reps, threads, version, sizeof version) != 0 &&
        strcmp(version, "not run") == 0) {
      snprintf(version, sizeof version, "unavailable (no /usr/bin/python3 or it failed)");
      torch = 0;
    }
    for (int i = 0; i < NROWS; i++)
      if (rows[i].on && time_lamina(&m, &rows[i], reps) != 0) return 1;
    fprintf(stderr, "round %d/%d done\n", round + 1, rounds);
  }
  FILE *lf2 = fopen("/proc/loadavg", "r");
  double lb[3] = {-1, -1, -1};
  if (lf2) {
    if (fscanf(lf2, "%lf %lf %lf", &lb[0], &lb[1], &lb[2]) != 3) lb[0] = -1;
    fclose(lf2);
  }
  printf("device: %s (%s), %u compute units; PyTorch: %s\n", dev->name, dev->platform_name,
         dev->compute_units, version);
  printf("%d rounds x %d reps, alternating; load average %.2f before, %.2f after; %s\n\n", rounds, reps,
         la[0], lb[0], fuse ? "lamina eval rows with lam_models_resnet_fuse" : "no fusion (--no-fuse)");
  printf("| %-52s | %9s | %9s | %9s | %9s | %6s | %6s |\n", "model", "lam best", "lam med", "pt best",
         "pt med", "ratio", "r med");
  printf("|------------------------------------------------------|----------:|----------:|----------:|"
         "----------:|-------:|-------:|\n");
  for (int i = 0; i < NROWS; i++) {
    const row *r = &rows[i];
    if (!r->on) continue;
    double lb_ = best(r->lam, r->nlam), lm = median(r->lam, r->nlam);
    double pb = r->npt ? best(r->pt, r->npt) : -1, pm = r->npt ? median(r->pt, r->npt) : -1;
    char a[32], b[32], c[32], d[32], e[32], f[32];
    fmt(a, sizeof a, lb_, 1e3), fmt(b, sizeof b, lm, 1e3), fmt(c, sizeof c, pb, 1e3);
    fmt(d, sizeof d, pm, 1e3), fmt_ratio(e, sizeof e, lb_, pb), fmt_ratio(f, sizeof f, lm, pm);
    printf("| %-52s | %9s | %9s | %9s | %9s | %6s | %6s |\n", r->desc, a, b, c, d, e, f);
  }
  printf("\ntimes in ms; ratio = lamina best / PyTorch best, r med = lamina median / PyTorch median "
         "(lower is better).\n");
  models_free(&m);
  lam_ctx_free(m.ctx);
  return 0;
}
