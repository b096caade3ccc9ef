/* train/safetensors.c: reading and writing safetensors files of parameter
 * trees, and the metadata string map.
 *
 * Reading: the 8-byte header length and the JSON header (parsed with cJSON)
 * are validated completely when the file is opened -- numbers must be
 * finite non-negative integers, dtypes known, sizes must agree with dtype
 * and shape, and the tensors' byte ranges must tile the data section
 * exactly, as the reference implementation requires -- so later reads only
 * seek and read. Tensor bytes are read one tensor after another (host memory is
 * bounded by the largest tensor) and converted on the host when the file
 * dtype differs from the leaf's. Writing builds the header with cJSON,
 * pads it with spaces to 8 bytes, writes a temporary file beside the target
 * and renames it into place. Byte order: little-endian hosts only. */
#if LAMINA_HAVE_CJSON
#include <cjson/cJSON.h>
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/platform_internal.h"
#include "train/io_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* The reference implementation refuses headers above 100 MB. */
#define LAM__ST_MAX_HEADER 100000000ULL

/* ---- metadata ---------------------------------------------------------------- */

struct lam_metadata {
  char **keys, **values;
  int n, cap;
};

lam_metadata *lam_metadata_create(void) { return calloc(1, sizeof(lam_metadata)); }

void lam_metadata_free(lam_metadata *m) {
  if (!m) return;
  for (int i = 0; i < m->n; i++) {
    free(m->keys[i]);
    free(m->values[i]);
  }
  free(m->keys);
  free(m->values);
  free(m);
}

static char *lam__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

lam_status lam_metadata_set(lam_metadata *m, const char *key, const char *value) {
  const char *fn = "lam_metadata_set";
  if (!m || !key || !value)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !m ? "m" : !key ? "key" : "value");
  char *v = lam__strdup(value);
  if (!v) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->keys[i], key) == 0) {
      free(m->values[i]);
      m->values[i] = v;
      return LAM_OK;
    }
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 8;
    char **k = realloc(m->keys, (size_t)cap * sizeof *k);
    if (k) m->keys = k;
    char **vv = k ? realloc(m->values, (size_t)cap * sizeof *vv) : NULL;
    if (vv) m->values = vv;
    if (!k || !vv) {
      free(v);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
    m->cap = cap;
  }
  char *k = lam__strdup(key);
  if (!k) {
    free(v);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  m->keys[m->n] = k;
  m->values[m->n++] = v;
  return LAM_OK;
}

const char *lam_metadata_get(const lam_metadata *m, const char *key) {
  if (!m || !key) return NULL;
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->keys[i], key) == 0) return m->values[i];
  return NULL;
}

int lam_metadata_count(const lam_metadata *m) { return m ? m->n : 0; }

lam_status lam_metadata_entry(const lam_metadata *m, int i, const char **key, const char **value) {
  if (!m) return lam__fail(LAM_ERR_NULL, "lam_metadata_entry: m is NULL");
  if (i < 0 || i >= m->n)
    return lam__fail(LAM_ERR_NOT_FOUND, "lam_metadata_entry: index %d outside 0..%d", i, m->n - 1);
  if (key) *key = m->keys[i];
  if (value) *value = m->values[i];
  return LAM_OK;
}

/* ---- dtypes and host conversion ---------------------------------------------- */

const char *const lam__st_names[LAM__ST_COUNT] = {
    "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
    "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
const int lam__st_sizes[LAM__ST_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1};

bool lam__st_is_float(lam__st_dtype d) {
  return d == LAM__ST_F64 || d == LAM__ST_F32 || d == LAM__ST_F16 || d == LAM__ST_BF16;
}

lam__st_dtype lam__st_of(lam_dtype d) {
  switch (d) {
    case LAM_F32: return LAM__ST_F32;
    case LAM_F16: return LAM__ST_F16;
    case LAM_F64: return LAM__ST_F64;
    case LAM_I32: return LAM__ST_I32;
    case LAM_U8: return LAM__ST_U8;
  }
  return LAM__ST_COUNT;
}

/* Whether file dtype s can be loaded into a leaf of dtype d. */
bool lam__st_compatible(lam__st_dtype s, lam_dtype d) {
  if (lam_dtype_is_float(d)) return lam__st_is_float(s);
  if (d == LAM_I32) return s == LAM__ST_I32 || s == LAM__ST_I64 || s == LAM__ST_U32; /* U32: bit pattern (MLX's packed weights) */
  if (d == LAM_U8) return s == LAM__ST_U8 || s == LAM__ST_BOOL;
  return false;
}

static float lam__half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      int e = 113;
      while (!(man & 0x400u)) {
        man <<= 1;
        e--;
      }
      bits = sign | ((uint32_t)e << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t lam__float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
  if (exp == 0xff) /* inf, or NaN keeping the top payload bits (quiet if they vanish) */
    return (uint16_t)(sign | 0x7c00u | (man ? ((man >> 13) ? (man >> 13) : 0x200u) : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t hm = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (hm & 1))) hm++;
    return (uint16_t)(sign | hm);
  }
  uint32_t hm = man >> 13, rem = man & 0x1fffu;
  uint32_t r = sign | ((uint32_t)e << 10) | hm;
  if (rem > 0x1000u || (rem == 0x1000u && (hm & 1))) r++; /* may carry into inf: correct */
  return (uint16_t)r;
}

static float lam__bf16_to_float(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static uint16_t lam__float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

static double lam__load_float(const unsigned char *p, lam__st_dtype d) {
  switch (d) {
    case LAM__ST_F64: { double v; memcpy(&v, p, 8); return v; }
    case LAM__ST_F32: { float v; memcpy(&v, p, 4); return v; }
    case LAM__ST_F16: { uint16_t h; memcpy(&h, p, 2); return lam__half_to_float(h); }
    case LAM__ST_BF16: { uint16_t h; memcpy(&h, p, 2); return lam__bf16_to_float(h); }
    default: return 0;
  }
}

static void lam__store_float(unsigned char *p, lam__st_dtype d, double v) {
  switch (d) {
    case LAM__ST_F64: memcpy(p, &v, 8); break;
    case LAM__ST_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
    case LAM__ST_F16: { uint16_t h = lam__float_to_half((float)v); memcpy(p, &h, 2); break; }
    case LAM__ST_BF16: { uint16_t h = lam__float_to_bf16((float)v); memcpy(p, &h, 2); break; }
    default: break;
  }
}

/* Converts n elements from file dtype s to d (float <-> float, or the
 * integer widenings/narrowings allowed by lam__st_compatible). Returns the
 * index of the first integer out of d's range, or -1. */
int64_t lam__convert(const unsigned char *src, lam__st_dtype s, unsigned char *dst,
                            lam__st_dtype d, int64_t n) {
  if (s == d) {
    memcpy(dst, src, (size_t)n * (size_t)lam__st_sizes[s]);
    return -1;
  }
  if (s == LAM__ST_U32 && d == LAM__ST_I32) { /* bit pattern: MLX's packed quantized weights */
    memcpy(dst, src, (size_t)n * 4);
    return -1;
  }
  size_t ss = (size_t)lam__st_sizes[s], ds = (size_t)lam__st_sizes[d];
  if (lam__st_is_float(s)) {
    for (int64_t i = 0; i < n; i++)
      lam__store_float(dst + (size_t)i * ds, d, lam__load_float(src + (size_t)i * ss, s));
    return -1;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t v = 0;
    if (s == LAM__ST_I64) memcpy(&v, src + i * 8, 8);
    else if (s == LAM__ST_I32) { int32_t w; memcpy(&w, src + i * 4, 4); v = w; }
    else v = src[i]; /* U8, BOOL */
    if (d == LAM__ST_I32) {
      if (v < INT32_MIN || v > INT32_MAX) return i;
      int32_t w = (int32_t)v;
      memcpy(dst + i * 4, &w, 4);
    } else {
      if (v < 0 || v > 255) return i;
      dst[i] = (unsigned char)v;
    }
  }
  return -1;
}

/* The lamina dtype a file dtype becomes in a new tree on ctx (or -1). */
static int lam__load_dtype(lam__st_dtype s, const lam_ctx *ctx) {
  const lam_device_info *info = lam_ctx_device(ctx);
  switch (s) {
    case LAM__ST_F32: return LAM_F32;
    case LAM__ST_F64: return info->fp64 ? LAM_F64 : LAM_F32;
    case LAM__ST_F16: return LAM_F16; /* f16 storage exists on every device */
    case LAM__ST_BF16: return LAM_F32;
    case LAM__ST_I32:
    case LAM__ST_I64:
    case LAM__ST_U32: return LAM_I32; /* U32 by bit pattern */
    case LAM__ST_U8:
    case LAM__ST_BOOL: return LAM_U8;
    default: return -1;
  }
}

/* ---- messages -------------------------------------------------------------------- */

/* A bounded string builder for lists of keys: items past `limit` bytes are
 * only counted, and reported as "(+N more)". */
void lam__list_add(lam__list *l, const char *fmt, ...) {
  char item[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(item, sizeof item, fmt, ap);
  va_end(ap);
  l->count++;
  size_t need = strlen(item) + (l->len ? 2 : 0);
  if (l->omitted || l->len + need >= l->limit) {
    l->omitted++;
    return;
  }
  l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s", l->len ? ", " : "", item);
}

const char *lam__list_end(lam__list *l) {
  if (l->omitted)
    snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s(+%d more)", l->len ? " " : "", l->omitted);
  return l->buf;
}

/* Formats a file shape (any ndim) into buf. */
const char *lam__st_shape(const lam__st_entry *e, char *buf) {
  if (e->ndim > LAM_MAX_DIMS) {
    snprintf(buf, LAM__SHAPE_STR, "(%d dims)", e->ndim);
    return buf;
  }
  return lam__shape_str(e->ndim, e->shape, buf);
}

/* ---- opening and validating -------------------------------------------------------- */

void lam__st_close(lam__st_file *sf) {
  if (!sf) return;
  if (sf->f) fclose(sf->f);
  for (int i = 0; i < sf->n; i++) free(sf->e[i].name);
  free(sf->e);
  free(sf->by_name);
  lam_metadata_free(sf->meta);
  memset(sf, 0, sizeof *sf);
}

/* Reads a JSON number that must be a non-negative integer below 2^53. */
#if LAMINA_HAVE_CJSON
static bool lam__json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return false;
  double v = j->valuedouble;
  if (!isfinite(v) || v < 0 || v > 9007199254740992.0 || v != floor(v)) return false;
  *out = (uint64_t)v;
  return true;
}

typedef struct {
  const lam__st_entry *e;
  int i;
} lam__sort_item;

static int lam__cmp_name(const void *a, const void *b) {
  const lam__sort_item *x = a, *y = b;
  int c = strcmp(x->e->name, y->e->name);
  return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int lam__cmp_offset(const void *a, const void *b) {
  const lam__sort_item *x = a, *y = b;
  if (x->e->begin != y->e->begin) return x->e->begin < y->e->begin ? -1 : 1;
  if (x->e->end != y->e->end) return x->e->end < y->e->end ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Parses one tensor entry of the header into e. */
static lam_status lam__parse_entry(const lam__st_file *sf, const cJSON *c, lam__st_entry *e,
                                   const char *fn) {
  const char *name = e->name;
  if (!cJSON_IsObject(c))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": entry \"%s\" is not an object", fn, sf->path, name);
  const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "dtype");
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(c, "shape");
  const cJSON *jo = cJSON_GetObjectItemCaseSensitive(c, "data_offsets");
  if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" needs a string \"dtype\" and "
                     "arrays \"shape\" and \"data_offsets\"", fn, sf->path, name);
  int d = 0;
  while (d < LAM__ST_COUNT && strcmp(lam__st_names[d], jd->valuestring) != 0) d++;
  if (d == LAM__ST_COUNT)
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" has unknown dtype \"%.40s\"", fn,
                     sf->path, name, jd->valuestring);
  e->dtype = (lam__st_dtype)d;
  int ndim = cJSON_GetArraySize(js);
  e->ndim = ndim;
  /* numel is bounded by the data size (each element takes >= 1 byte), so
   * the product cannot overflow once checked step by step. */
  uint64_t numel = 1;
  bool zero = false;
  int k = 0;
  for (const cJSON *x = js->child; x; x = x->next, k++) {
    uint64_t dim;
    if (!lam__json_uint(x, &dim))
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\": shape entry %d is not a "
                       "non-negative integer", fn, sf->path, name, k);
    if (k < LAM_MAX_DIMS) e->shape[k] = (int64_t)dim;
    if (dim == 0) zero = true;
    else if (!zero && numel > sf->data_len / dim + 1) numel = sf->data_len + 1; /* too big anyway */
    else if (!zero) numel *= dim;
  }
  if (zero) numel = 0;
  uint64_t off[2];
  if (cJSON_GetArraySize(jo) != 2 || !lam__json_uint(jo->child, &off[0]) ||
      !lam__json_uint(jo->child->next, &off[1]))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\": data_offsets must be two "
                     "non-negative integers", fn, sf->path, name);
  e->begin = off[0];
  e->end = off[1];
  if (off[1] < off[0] || off[1] > sf->data_len)
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\": data_offsets [%llu, %llu] "
                     "outside the %llu data bytes", fn, sf->path, name, (unsigned long long)off[0],
                     (unsigned long long)off[1], (unsigned long long)sf->data_len);
  char b[LAM__SHAPE_STR];
  if (numel > sf->data_len || numel * (uint64_t)lam__st_sizes[d] != off[1] - off[0])
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\": %s %s needs %s bytes but "
                     "data_offsets [%llu, %llu] hold %llu", fn, sf->path, name, lam__st_names[d],
                     lam__st_shape(e, b),
                     numel > sf->data_len ? "more than the file's" : "a different number of",
                     (unsigned long long)off[0], (unsigned long long)off[1],
                     (unsigned long long)(off[1] - off[0]));
  e->numel = (int64_t)numel;
  return LAM_OK;
}

static lam_status lam__parse_header(lam__st_file *sf, const char *hdr, size_t len, const char *fn) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(hdr, len, &end, 0);
  if (!root) {
    size_t at = end && end >= hdr && end <= hdr + len ? (size_t)(end - hdr) : 0;
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the JSON header is malformed near byte %zu of %zu",
                     fn, sf->path, at, len);
  }
  lam_status st = LAM_OK;
  for (const char *p = end; p < hdr + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": junk after the JSON header at byte %zu", fn,
                     sf->path, (size_t)(p - hdr));
      goto done;
    }
  if (!cJSON_IsObject(root)) {
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the header is not a JSON object", fn, sf->path);
    goto done;
  }
  int count = cJSON_GetArraySize(root);
  sf->e = calloc((size_t)count + 1, sizeof *sf->e);
  sf->meta = lam_metadata_create();
  if (!sf->e || !sf->meta) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  bool seen_meta = false;
  for (const cJSON *c = root->child; c; c = c->next) {
    if (!c->string) {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": header entry without a name", fn, sf->path);
      goto done;
    }
    if (strcmp(c->string, "__metadata__") == 0) {
      if (seen_meta || !cJSON_IsObject(c)) {
        st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": __metadata__ must be one object of strings", fn,
                       sf->path);
        goto done;
      }
      seen_meta = true;
      for (const cJSON *m = c->child; m; m = m->next) {
        if (!m->string || !cJSON_IsString(m)) {
          st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": __metadata__ value \"%.200s\" is not a string",
                         fn, sf->path, m->string ? m->string : "");
          goto done;
        }
        if ((st = lam_metadata_set(sf->meta, m->string, m->valuestring)) != LAM_OK) goto done;
      }
      continue;
    }
    lam__st_entry *e = &sf->e[sf->n];
    e->name = lam__strdup(c->string);
    if (!e->name) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      goto done;
    }
    sf->n++;
    if ((st = lam__parse_entry(sf, c, e, fn)) != LAM_OK) goto done;
  }
  /* Names must be unique; byte ranges must tile [0, data_len). */
  lam__sort_item *items = malloc(((size_t)sf->n + 1) * sizeof *items);
  sf->by_name = malloc(((size_t)sf->n + 1) * sizeof *sf->by_name);
  if (!items || !sf->by_name) {
    free(items);
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  for (int i = 0; i < sf->n; i++) items[i] = (lam__sort_item){&sf->e[i], i};
  qsort(items, (size_t)sf->n, sizeof *items, lam__cmp_name);
  for (int i = 0; i < sf->n; i++) {
    sf->by_name[i] = items[i].i;
    if (i > 0 && strcmp(items[i].e->name, items[i - 1].e->name) == 0) {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" appears twice", fn, sf->path,
                     items[i].e->name);
      free(items);
      goto done;
    }
  }
  qsort(items, (size_t)sf->n, sizeof *items, lam__cmp_offset);
  uint64_t pos = 0;
  for (int i = 0; i < sf->n && st == LAM_OK; i++) {
    const lam__st_entry *e = items[i].e;
    if (e->begin != pos)
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" data_offsets [%llu, %llu] %s "
                     "byte %llu", fn, sf->path, e->name, (unsigned long long)e->begin,
                     (unsigned long long)e->end, e->begin < pos ? "overlap the tensor before, ending at"
                                                                : "leave a gap after",
                     (unsigned long long)pos);
    pos = e->end;
  }
  if (st == LAM_OK && pos != sf->data_len)
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensors cover %llu of the %llu data bytes", fn,
                   sf->path, (unsigned long long)pos, (unsigned long long)sf->data_len);
  free(items);
done:
  cJSON_Delete(root);
  return st;
}

#else /* !LAMINA_HAVE_CJSON */
static lam_status lam__parse_header(lam__st_file *sf, const char *hdr, size_t len, const char *fn) {
  (void)hdr;
  (void)len;
  return lam__fail(LAM_ERR_UNSUPPORTED,
                   "%s: \"%s\": this lamina was built without cJSON (LAMINA_WITH_CJSON); "
                   "safetensors headers cannot be parsed", fn, sf->path);
}
#endif /* LAMINA_HAVE_CJSON */

lam_status lam__st_open(const char *path, const char *fn, lam__st_file *sf) {
  memset(sf, 0, sizeof *sf);
  if (!path) return lam__fail(LAM_ERR_NULL, "%s: path is NULL", fn);
  sf->path = path;
  FILE *f = fopen(path, "rb");
  if (!f) return lam__fail(LAM_ERR_IO, "%s: cannot open \"%s\": %s", fn, path, strerror(errno));
  sf->f = f;
  uint64_t size = 0;
  if (lam__file_size(f, &size) != 0) {
    lam__st_close(sf);
    return lam__fail(LAM_ERR_IO, "%s: \"%s\" is not a regular file", fn, path);
  }
  unsigned char lenb[8];
  if (size < 8 || fread(lenb, 1, 8, f) != 8) {
    lam__st_close(sf);
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": %llu bytes is too short for the 8-byte header "
                     "length", fn, path, (unsigned long long)size);
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | lenb[i];
  if (hlen < 2 || hlen > size - 8 || hlen > LAM__ST_MAX_HEADER) {
    lam__st_close(sf);
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": header length %llu is impossible for a file of "
                     "%llu bytes", fn, path, (unsigned long long)hlen, (unsigned long long)size);
  }
  char *hdr = malloc((size_t)hlen + 1);
  if (!hdr) {
    lam__st_close(sf);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen) {
    free(hdr);
    lam__st_close(sf);
    return lam__fail(LAM_ERR_IO, "%s: \"%s\": cannot read the header", fn, path);
  }
  hdr[hlen] = '\0';
  sf->data_start = 8 + hlen;
  sf->data_len = size - 8 - hlen;
  lam_status st;
  if (hdr[0] != '{' || memchr(hdr, '\0', (size_t)hlen))
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the header is not a JSON object", fn, path);
  else
    st = lam__parse_header(sf, hdr, (size_t)hlen, fn);
  free(hdr);
  if (st != LAM_OK) {
    lam_status keep = st;
    lam__st_close(sf);
    return keep;
  }
  return LAM_OK;
}

int lam__st_find(const lam__st_file *sf, const char *prefix, const char *rest) {
  size_t pl = prefix ? strlen(prefix) : 0;
  int lo = 0, hi = sf->n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    const char *name = sf->e[sf->by_name[mid]].name;
    int c = strncmp(name, prefix ? prefix : "", pl);
    if (c == 0) c = strcmp(name + pl, rest);
    if (c == 0) return sf->by_name[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

bool lam__has_prefix(const char *name, const char *prefix) {
  return !prefix || strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Reads entry e's bytes into buf (entry size). */
lam_status lam__st_read(lam__st_file *sf, const lam__st_entry *e, void *buf, const char *fn) {
  size_t n = (size_t)(e->end - e->begin);
  if (n == 0) return LAM_OK;
  if (fseeko(sf->f, (off_t)(sf->data_start + e->begin), SEEK_SET) != 0 ||
      fread(buf, 1, n, sf->f) != n)
    return lam__fail(LAM_ERR_IO, "%s: \"%s\": cannot read tensor \"%s\" (%zu bytes at %llu)", fn,
                     sf->path, e->name, n, (unsigned long long)(sf->data_start + e->begin));
  return LAM_OK;
}

/* ---- loading into an existing tree ---------------------------------------------- */

static bool lam__same_shape(const lam__st_entry *e, const lam_tensor *t) {
  if (e->ndim != t->ndim) return false;
  for (int i = 0; i < e->ndim; i++)
    if (e->shape[i] != t->shape[i]) return false;
  return true;
}

lam_status lam__st_check_into(const lam__st_file *sf, const lam_ptree *tree, const char *prefix,
                              bool strict, const char *fn) {
  int n = lam_ptree_leaf_count(tree);
  bool *used = calloc((size_t)sf->n + 1, sizeof *used);
  lam__list *miss = calloc(1, sizeof *miss), *unexp = calloc(1, sizeof *unexp),
            *bad = calloc(1, sizeof *bad);
  lam_status st = LAM_OK;
  if (!used || !miss || !unexp || !bad) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  miss->limit = unexp->limit = bad->limit = 2400;
  bool shape_bad = false;
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(tree, i, &path, &t);
    int j = lam__st_find(sf, prefix, path);
    if (j < 0) {
      lam__list_add(miss, "%s", path);
      continue;
    }
    used[j] = true;
    const lam__st_entry *e = &sf->e[j];
    bool same = lam__same_shape(e, t), compat = lam__st_compatible(e->dtype, t->dtype);
    if (!same || !compat) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      shape_bad |= !same;
      lam__list_add(bad, "%s (file %s %s, model %s %s)", path, lam__st_names[e->dtype],
                    lam__st_shape(e, b1), lam_dtype_name(t->dtype),
                    lam__shape_str(t->ndim, t->shape, b2));
    }
  }
  for (int j = 0; j < sf->n; j++)
    if (!used[j] && lam__has_prefix(sf->e[j].name, prefix)) lam__list_add(unexp, "%s", sf->e[j].name);
  bool keys_bad = strict && (miss->count || unexp->count);
  if (keys_bad || bad->count) {
    char m1[64] = "", m2[64] = "", m3[64] = "";
    if (strict && miss->count)
      snprintf(m1, sizeof m1, "%d missing key%s (in the model, not in the file): ", miss->count,
               miss->count == 1 ? "" : "s");
    if (strict && unexp->count)
      snprintf(m2, sizeof m2, "%d unexpected key%s (in the file, not in the model): ", unexp->count,
               unexp->count == 1 ? "" : "s");
    if (bad->count)
      snprintf(m3, sizeof m3, "%d mismatch%s: ", bad->count, bad->count == 1 ? "" : "es");
    st = lam__fail(keys_bad ? LAM_ERR_NOT_FOUND : shape_bad ? LAM_ERR_SHAPE : LAM_ERR_DTYPE,
                   "%s: \"%s\"%s%s%s does not match the model: %s%s%s%s%s%s%s%s", fn, sf->path,
                   prefix && *prefix ? " (prefix \"" : "", prefix && *prefix ? prefix : "",
                   prefix && *prefix ? "\")" : "", m1, *m1 ? lam__list_end(miss) : "",
                   *m1 && (*m2 || *m3) ? "; " : "", m2, *m2 ? lam__list_end(unexp) : "",
                   *m2 && *m3 ? "; " : "", m3, *m3 ? lam__list_end(bad) : "");
  }
done:
  free(used);
  free(miss);
  free(unexp);
  free(bad);
  return st;
}

lam_status lam__st_read_into(lam__st_file *sf, lam_ptree *tree, const char *prefix, const char *fn) {
  int n = lam_ptree_leaf_count(tree);
  unsigned char *raw = NULL, *conv = NULL;
  size_t raw_cap = 0, conv_cap = 0;
  lam_status st = LAM_OK;
  for (int i = 0; i < n && st == LAM_OK; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(tree, i, &path, &t);
    int j = lam__st_find(sf, prefix, path);
    if (j < 0) continue;
    const lam__st_entry *e = &sf->e[j];
    size_t rb = (size_t)(e->end - e->begin), tb = lam_tensor_nbytes(t);
    if (rb > raw_cap || tb > conv_cap) {
      free(raw);
      free(conv);
      raw_cap = rb > raw_cap ? rb : raw_cap;
      conv_cap = tb > conv_cap ? tb : conv_cap;
      raw = malloc(raw_cap + 1);
      conv = malloc(conv_cap + 1);
      if (!raw || !conv) {
        st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory for \"%s\"", fn, path);
        break;
      }
    }
    if ((st = lam__st_read(sf, e, raw, fn)) != LAM_OK) break;
    int64_t badi = lam__convert(raw, e->dtype, conv, lam__st_of(t->dtype), t->numel);
    if (badi >= 0) {
      st = lam__fail(LAM_ERR_DTYPE, "%s: \"%s\": tensor \"%s\" element %lld does not fit %s", fn,
                     sf->path, e->name, (long long)badi, lam_dtype_name(t->dtype));
      break;
    }
    st = lam_tensor_write(t, conv, tb);
  }
  free(raw);
  free(conv);
  return st;
}

lam_status lam__st_read_tree(lam__st_file *sf, lam_ctx *ctx, const char *prefix, lam_ptree **out,
                             const char *fn) {
  *out = NULL;
  /* Check everything lamina must refuse before creating any tensor. */
  for (int j = 0; j < sf->n; j++) {
    const lam__st_entry *e = &sf->e[j];
    if (!lam__has_prefix(e->name, prefix)) continue;
    char b[LAM__SHAPE_STR];
    if (lam__load_dtype(e->dtype, ctx) < 0)
      return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": tensor \"%s\" has dtype %s, which lamina "
                       "cannot load", fn, sf->path, e->name, lam__st_names[e->dtype]);
    bool zero = false;
    for (int k = 0; k < e->ndim && k < LAM_MAX_DIMS; k++) zero |= e->shape[k] == 0;
    if (e->ndim > LAM_MAX_DIMS || zero || e->numel > LAM__MAX_NUMEL)
      return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": tensor \"%s\" of shape %s: lamina tensors "
                       "have 0..8 dims, each >= 1, and fewer than 2^31 elements", fn, sf->path,
                       e->name, lam__st_shape(e, b));
    if (!*(e->name + (prefix ? strlen(prefix) : 0)))
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" has an empty name after the "
                       "prefix", fn, sf->path, e->name);
  }
  lam_ptree *tree = lam_ptree_dict();
  if (!tree) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  unsigned char *raw = NULL, *conv = NULL;
  lam_status st = LAM_OK;
  for (int j = 0; j < sf->n && st == LAM_OK; j++) {
    const lam__st_entry *e = &sf->e[j];
    if (!lam__has_prefix(e->name, prefix)) continue;
    const char *key = e->name + (prefix ? strlen(prefix) : 0);
    lam_dtype dt = (lam_dtype)lam__load_dtype(e->dtype, ctx);
    size_t rb = (size_t)(e->end - e->begin), tb = (size_t)e->numel * lam_dtype_size(dt);
    raw = malloc(rb + 1);
    conv = malloc(tb + 1);
    if (!raw || !conv) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory for \"%s\"", fn, e->name);
    } else if ((st = lam__st_read(sf, e, raw, fn)) == LAM_OK) {
      int64_t badi = lam__convert(raw, e->dtype, conv, lam__st_of(dt), e->numel);
      if (badi >= 0) {
        st = lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": tensor \"%s\" element %lld does not fit %s",
                       fn, sf->path, e->name, (long long)badi, lam_dtype_name(dt));
      } else {
        lam_tensor *t = lam_tensor_from_host(ctx, dt, e->ndim, e->shape, conv);
        if (!t) {
          st = lam_last_status();
        } else {
          st = lam_ptree_set(tree, key, t);
          lam_tensor_free(t);
          if (st != LAM_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", lam_last_error());
            st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" does not fit in a tree with "
                           "the others (%s)", fn, sf->path, e->name, why);
          }
        }
      }
    }
    free(raw);
    free(conv);
    raw = conv = NULL;
  }
  if (st != LAM_OK) {
    lam_ptree_free(tree);
    return st;
  }
  *out = tree;
  return LAM_OK;
}

/* ---- public loading ------------------------------------------------------------------ */

lam_load_opts lam_load_defaults(void) { return (lam_load_opts){.non_strict = false, .prefix = NULL}; }

lam_status lam_safetensors_load(lam_ctx *ctx, const char *path, const lam_load_opts *opts,
                                lam_ptree **out, lam_metadata **metadata) {
  const char *fn = "lam_safetensors_load";
  if (out) *out = NULL;
  if (metadata) *metadata = NULL;
  if (!ctx || !path || !out)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !ctx ? "ctx" : !path ? "path" : "out");
  const char *prefix = opts && opts->prefix && *opts->prefix ? opts->prefix : NULL;
  lam__st_file sf;
  lam_status st = lam__st_open(path, fn, &sf);
  if (st != LAM_OK) return st;
  st = lam__st_read_tree(&sf, ctx, prefix, out, fn);
  if (st == LAM_OK && metadata) {
    *metadata = sf.meta;
    sf.meta = NULL;
  }
  lam__st_close(&sf);
  return st;
}

lam_status lam_safetensors_read_metadata(const char *path, lam_metadata **out) {
  const char *fn = "lam_safetensors_read_metadata";
  if (out) *out = NULL;
  if (!path || !out) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, path ? "out" : "path");
  lam__st_file sf;
  lam_status st = lam__st_open(path, fn, &sf);
  if (st != LAM_OK) return st;
  *out = sf.meta;
  sf.meta = NULL;
  lam__st_close(&sf);
  return LAM_OK;
}

/* lam_ptree_load_into is in load.c, with lam_vars_load. */

/* ---- saving ---------------------------------------------------------------------------- */

lam_save_opts lam_save_defaults(void) { return (lam_save_opts){NULL, LAM_FILE_KEEP}; }

typedef struct {
  const char *path;
  lam_tensor *t;
  lam__st_dtype fdt;
  uint64_t begin, end;
  int order;
} lam__save_item;

#if LAMINA_HAVE_CJSON
static int lam__cmp_save(const void *a, const void *b) {
  const lam__save_item *x = *(lam__save_item *const *)a, *y = *(lam__save_item *const *)b;
  int sx = lam__st_sizes[x->fdt], sy = lam__st_sizes[y->fdt];
  if (sx != sy) return sy - sx;
  return x->order - y->order;
}

/* Adds item to an object (key) or array (key NULL); deletes it on failure. */
static bool lam__jadd(cJSON *parent, const char *key, cJSON *item) {
  if (!item) return false;
  bool ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
  if (!ok) cJSON_Delete(item);
  return ok;
}

/* Adds "name": {"dtype", "shape", "data_offsets"} to root; false when out of memory. */
static bool lam__json_entry(cJSON *root, const lam__save_item *it) {
  cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
  bool ok = o && shape && offs;
  char num[32];
  for (int k = 0; ok && k < it->t->ndim; k++) {
    snprintf(num, sizeof num, "%lld", (long long)it->t->shape[k]);
    ok = lam__jadd(shape, NULL, cJSON_CreateRaw(num));
  }
  snprintf(num, sizeof num, "%llu", (unsigned long long)it->begin);
  ok = ok && lam__jadd(offs, NULL, cJSON_CreateRaw(num));
  snprintf(num, sizeof num, "%llu", (unsigned long long)it->end);
  ok = ok && lam__jadd(offs, NULL, cJSON_CreateRaw(num));
  ok = ok && lam__jadd(o, "dtype", cJSON_CreateString(lam__st_names[it->fdt]));
  if (!ok) {
    cJSON_Delete(o);
    cJSON_Delete(shape);
    cJSON_Delete(offs);
    return false;
  }
  /* lam__jadd deletes what it fails to attach; o owns what it attached. */
  if (!lam__jadd(o, "shape", shape)) {
    cJSON_Delete(o);
    cJSON_Delete(offs);
    return false;
  }
  if (!lam__jadd(o, "data_offsets", offs)) {
    cJSON_Delete(o);
    return false;
  }
  return lam__jadd(root, it->path, o);
}

lam_status lam_safetensors_save(const char *path, const lam_ptree *tree, const lam_save_opts *opts) {
  const char *fn = "lam_safetensors_save";
  if (!path || !tree) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, path ? "tree" : "path");
  lam_save_opts o = opts ? *opts : lam_save_defaults();
  if ((int)o.float_dtype < LAM_FILE_KEEP || o.float_dtype > LAM_FILE_F64)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown float_dtype %d", fn, (int)o.float_dtype);
  static const lam__st_dtype as[] = {LAM__ST_COUNT, LAM__ST_F32, LAM__ST_F16, LAM__ST_BF16,
                                     LAM__ST_F64};
  int n = lam_ptree_leaf_count(tree);
  lam__save_item *items = calloc((size_t)n + 1, sizeof *items);
  lam__save_item **order = calloc((size_t)n + 1, sizeof *order);
  cJSON *root = cJSON_CreateObject();
  char *json = NULL, *tmp = NULL;
  unsigned char *host = NULL, *conv = NULL;
  FILE *f = NULL;
  lam_status st = LAM_OK;
  if (!items || !order || !root || !(tmp = malloc(strlen(path) + 64))) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  size_t max_bytes = 0;
  for (int i = 0; i < n; i++) {
    lam__save_item *it = &items[i];
    lam_ptree_leaf(tree, i, &it->path, &it->t);
    if (strcmp(it->path, "__metadata__") == 0) {
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: a leaf may not be named \"__metadata__\"", fn);
      goto done;
    }
    it->fdt = o.float_dtype != LAM_FILE_KEEP && lam_dtype_is_float(it->t->dtype)
                  ? as[o.float_dtype]
                  : lam__st_of(it->t->dtype);
    it->order = i;
    order[i] = it;
    size_t b = lam_tensor_nbytes(it->t);
    size_t fb = (size_t)it->t->numel * (size_t)lam__st_sizes[it->fdt];
    if (b > max_bytes) max_bytes = b;
    if (fb > max_bytes) max_bytes = fb;
  }
  qsort(order, (size_t)n, sizeof *order, lam__cmp_save);
  uint64_t pos = 0;
  for (int i = 0; i < n; i++) {
    order[i]->begin = pos;
    pos += (uint64_t)order[i]->t->numel * (uint64_t)lam__st_sizes[order[i]->fdt];
    order[i]->end = pos;
  }
  /* Header: metadata first, then the tensors in tree order. */
  bool ok = true;
  if (o.metadata && o.metadata->n) {
    cJSON *m = cJSON_CreateObject();
    ok = m != NULL;
    for (int i = 0; ok && i < o.metadata->n; i++)
      ok = lam__jadd(m, o.metadata->keys[i], cJSON_CreateString(o.metadata->values[i]));
    if (ok) ok = lam__jadd(root, "__metadata__", m);
    else cJSON_Delete(m);
  }
  for (int i = 0; ok && i < n; i++) ok = lam__json_entry(root, &items[i]);
  if (ok) json = cJSON_PrintUnformatted(root);
  if (!ok || !json) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory building the header", fn);
    goto done;
  }
  size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
  host = malloc(max_bytes + 1);
  conv = malloc(max_bytes + 1);
  if (!host || !conv) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory (%zu bytes)", fn, max_bytes);
    goto done;
  }
  f = lam__temp_open(path, tmp, strlen(path) + 64);
  if (!f) {
    st = lam__fail(LAM_ERR_IO, "%s: cannot create a temporary file beside \"%s\": %s", fn, path,
                   strerror(errno));
    goto done;
  }
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  bool wok = fwrite(lenb, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
  for (size_t i = jlen; wok && i < hlen; i++) wok = fputc(' ', f) != EOF;
  for (int i = 0; wok && i < n; i++) {
    const lam__save_item *it = order[i];
    size_t b = lam_tensor_nbytes(it->t), fb = (size_t)(it->end - it->begin);
    if ((st = lam_tensor_to_host(it->t, host, b)) != LAM_OK) break;
    const unsigned char *src = host;
    if (it->fdt != lam__st_of(it->t->dtype)) {
      lam__convert(host, lam__st_of(it->t->dtype), conv, it->fdt, it->t->numel);
      src = conv;
    }
    wok = fwrite(src, 1, fb, f) == fb;
  }
  if (st == LAM_OK && (!wok || lam__file_sync(f) != 0))
    st = lam__fail(LAM_ERR_IO, "%s: cannot write \"%s\": %s", fn, tmp, strerror(errno));
  if (fclose(f) != 0 && st == LAM_OK)
    st = lam__fail(LAM_ERR_IO, "%s: cannot write \"%s\": %s", fn, tmp, strerror(errno));
  f = NULL;
  if (st == LAM_OK && lam__file_replace(tmp, path) != 0)
    st = lam__fail(LAM_ERR_IO, "%s: cannot rename \"%s\" to \"%s\": %s", fn, tmp, path,
                   strerror(errno));
  if (st != LAM_OK) remove(tmp);
done:
  if (f) {
    fclose(f);
    remove(tmp);
  }
  cJSON_Delete(root);
  free(json);
  free(tmp);
  free(host);
  free(conv);
  free(items);
  free(order);
  return st;
}
#else /* !LAMINA_HAVE_CJSON */

lam_status lam_safetensors_save(const char *path, const lam_ptree *tree, const lam_save_opts *opts) {
  const char *fn = "lam_safetensors_save";
  if (!path || !tree) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, path ? "tree" : "path");
  (void)opts;
  return lam__fail(LAM_ERR_UNSUPPORTED,
                   "%s: this lamina was built without cJSON (LAMINA_WITH_CJSON); safetensors "
                   "files cannot be written", fn);
}
#endif /* LAMINA_HAVE_CJSON */
