/* The optional compiled core of the pseudonym functions of _mask_fp.py (make accel).
 *
 * The same results as the pure-Python functions, byte for byte (property tests hold them
 * equal): is_pseudonym() is fp_is_pseudonym(); Keyed(key).digest() is Keyed.digest()
 * (HMAC-SHA256 of ``purpose NUL value``), Keyed(key).fp() is Keyed.fp(check=False) and
 * Keyed(key).email() is Keyed.email() for ASCII addresses;
 * b64_spans() is the list of _detectors.b64_runs(); card_ok() is _detectors._card_ok() for
 * ASCII text; email_spans() gives the spans of _detectors._emails(); enclosing() is
 * _mask_json._enclosing().
 * SHA-256 is bundled (FIPS 180-4) so the build needs only a C compiler and Python.h.
 * _mask_fp.py uses this module only when it was built from this file and _mask_fp.py as
 * they are now (SOURCE_HASH, set by setup.py; _detectors.py too) and REPLAYGATE_PURE_PYTHON is
 * not set.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef SOURCE_HASH
#define SOURCE_HASH ""
#endif

/* == SHA-256 ============================================================================ */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block_c(uint32_t *h, const uint8_t *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1
/* one block with the x86 SHA extensions (the same function as sha256_block_c, ~5x faster;
 * chosen at import when the CPU has them: CPUID leaf 7, EBX bit 29) */
__attribute__((target("sha,sse4.1"))) static void sha256_block_ni(uint32_t *h, const uint8_t *p) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);        /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);        /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);      /* CDGH */
    const __m128i abef = st0, cdgh = st1;
    __m128i w[4], msg;
    for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
    for (int i = 0; i < 16; i++) {
        msg = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
        if (i >= 3 && i <= 14) {
            __m128i t = _mm_alignr_epi8(w[i & 3], w[(i - 1) & 3], 4);
            w[(i + 1) & 3] = _mm_add_epi32(w[(i + 1) & 3], t);
            w[(i + 1) & 3] = _mm_sha256msg2_epu32(w[(i + 1) & 3], w[i & 3]);
        }
        msg = _mm_shuffle_epi32(msg, 0x0E);
        st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
        if (i >= 1 && i <= 12)
            w[(i + 3) & 3] = _mm_sha256msg1_epu32(w[(i + 3) & 3], w[i & 3]);
    }
    st0 = _mm_add_epi32(st0, abef);
    st1 = _mm_add_epi32(st1, cdgh);
    tmp = _mm_shuffle_epi32(st0, 0x1B);       /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);       /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);    /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);       /* ABEF */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static int cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    if (!(b & (1u << 29))) /* SHA */
        return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c & (1u << 19)) && (c & (1u << 9)); /* SSE4.1, SSSE3 */
}
#endif

/* sha256_block_ni when the CPU has the SHA extensions (REPLAYGATE_NO_SHA_NI=1: never) */
static void (*sha256_block)(uint32_t *, const uint8_t *) = sha256_block_c;

static void sha256_choose(void) {
#ifdef HAVE_SHA_NI_CODE
    const char *off = getenv("REPLAYGATE_NO_SHA_NI");
    if (cpu_has_sha_ni() && (off == NULL || off[0] == 0 || strcmp(off, "0") == 0))
        sha256_block = sha256_block_ni;
#endif
}

static void sha256_init(sha256_ctx *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->n = 0;
}

static void sha256_update(sha256_ctx *s, const uint8_t *p, size_t n) {
    s->len += n;
    if (s->n) {
        size_t take = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->buf + s->n, p, take);
        s->n += take, p += take, n -= take;
        if (s->n < 64)
            return;
        sha256_block(s->h, s->buf);
        s->n = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha256_block(s->h, p);
    memcpy(s->buf, p, n);
    s->n = n;
}

static void sha256_final(sha256_ctx *s, uint8_t out[32]) {
    uint64_t bits = s->len * 8;
    size_t n = s->n;
    int i;
    s->buf[n++] = 0x80; /* the padding written in place: one or two last blocks */
    if (n > 56) {
        memset(s->buf + n, 0, 64 - n);
        sha256_block(s->h, s->buf);
        n = 0;
    }
    memset(s->buf + n, 0, 56 - n);
    for (i = 0; i < 8; i++)
        s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_block(s->h, s->buf);
    for (i = 0; i < 8; i++) { /* big-endian words */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint32_t be = __builtin_bswap32(s->h[i]);
        memcpy(out + 4 * i, &be, 4);
#else
        out[4 * i] = (uint8_t)(s->h[i] >> 24), out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8), out[4 * i + 3] = (uint8_t)s->h[i];
#endif
    }
}

/* == the digest as one 256-bit number (int.from_bytes(digest, "big")) =================== */
typedef struct {
    uint32_t w[8]; /* most significant first */
} u256;

static void u256_from(u256 *n, const uint8_t d[32]) {
    for (int i = 0; i < 8; i++)
        n->w[i] = ((uint32_t)d[4 * i] << 24) | ((uint32_t)d[4 * i + 1] << 16) |
                  ((uint32_t)d[4 * i + 2] << 8) | (uint32_t)d[4 * i + 3];
}

/* n, r = divmod(n, m) */
static unsigned u256_divmod(u256 *n, uint32_t m) {
    uint64_t r = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t cur = (r << 32) | n->w[i];
        n->w[i] = (uint32_t)(cur / m);
        r = cur % m;
    }
    return (unsigned)r;
}

/* == layout: which positions hold the checksum (tag), which the keyed body ============== */
enum { C_NONE = 0, C_DIGIT = 1, C_LOWER = 2, C_UPPER = 3 };

static double BITS_D, BITS_L; /* math.log2(10), math.log2(26) */

static inline int cls_of(Py_UCS4 ch) {
    if (ch >= '0' && ch <= '9')
        return C_DIGIT;
    if (ch >= 'a' && ch <= 'z')
        return C_LOWER;
    if (ch >= 'A' && ch <= 'Z')
        return C_UPPER;
    return C_NONE;
}

static inline unsigned alphabet_len(int c) { return c == C_DIGIT ? 10 : 26; }
static inline char alphabet_at(int c, unsigned r) {
    return (char)(c == C_DIGIT ? '0' + r : c == C_LOWER ? 'a' + r : 'A' + r);
}

/* where the slice cls[keep:] starts (Python's rule, a negative keep included) */
static inline Py_ssize_t rest_start(Py_ssize_t n, Py_ssize_t keep) {
    return keep >= 0 ? keep : (n + keep > 0 ? n + keep : 0);
}

/* _layout_of(cls, keep): fills pos (the classed positions >= keep, ascending); the last
 * *ntag of them are the tag, the others the body. *ntag is 0 when there are too few bits. */
static void layout(const unsigned char *cls, Py_ssize_t n, Py_ssize_t keep, Py_ssize_t *pos,
                   Py_ssize_t *npos, Py_ssize_t *ntag) {
    Py_ssize_t np = 0, nd = 0, k;
    Py_ssize_t rest = rest_start(n, keep); /* the digits are counted in cls[keep:] */
    for (Py_ssize_t i = keep < 0 ? 0 : keep; i < n; i++) {
        if (cls[i] != C_NONE) {
            pos[np++] = i;
            nd += cls[i] == C_DIGIT && i >= rest;
        }
    }
    double bits = (double)nd * BITS_D + (double)(np - nd) * BITS_L;
    double target = bits / 2;
    if (!(target > 16.0))
        target = 16.0;
    if (30.0 < target)
        target = 30.0;
    double got = 0.0;
    for (k = np - 1; k >= 0; k--) {
        if (got >= target)
            break;
        got += cls[pos[k]] == C_DIGIT ? BITS_D : BITS_L;
    }
    *npos = np;
    *ntag = got < target ? 0 : np - 1 - k;
}

static const uint8_t FP_PREFIX[] = "rg-fp1";

/* the checksum digits of ``bytes`` (tag positions already NUL) into out[tag...] */
static u256 checksum_number(const uint8_t *bytes, Py_ssize_t n) {
    sha256_ctx s;
    uint8_t d[32];
    u256 num;
    sha256_init(&s);
    sha256_update(&s, FP_PREFIX, 7); /* "rg-fp1\x00" */
    sha256_update(&s, bytes, (size_t)n);
    sha256_final(&s, d);
    u256_from(&num, d);
    return num;
}

/* UTF-8 with surrogatepass of a str; *owner keeps the buffer alive (a new bytes or NULL) */
static const uint8_t *utf8_of(PyObject *str, Py_ssize_t *len, PyObject **owner) {
    *owner = NULL;
    if (PyUnicode_IS_ASCII(str)) {
        *len = PyUnicode_GET_LENGTH(str);
        return (const uint8_t *)PyUnicode_DATA(str);
    }
    PyObject *b = PyUnicode_AsEncodedString(str, "utf-8", "surrogatepass");
    if (b == NULL)
        return NULL;
    *owner = b;
    *len = PyBytes_GET_SIZE(b);
    return (const uint8_t *)PyBytes_AS_STRING(b);
}

static inline Py_ssize_t utf8_width(Py_UCS4 ch) {
    return ch < 0x80 ? 1 : ch < 0x800 ? 2 : ch < 0x10000 ? 3 : 4;
}

/* == is_pseudonym(value, keep=0) ======================================================== */
static PyObject *core_is_pseudonym(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t keep = 0;
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "is_pseudonym(value: str, keep: int = 0)");
        return NULL;
    }
    if (nargs == 2) {
        keep = PyLong_AsSsize_t(args[1]);
        if (keep == -1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *value = args[0];
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    unsigned char cls_small[256];
    Py_ssize_t pos_small[256];
    unsigned char *cls = cls_small;
    Py_ssize_t *pos = pos_small;
    PyObject *result = NULL, *owner = NULL;
    uint8_t *blank = NULL;
    if (n > 256) {
        cls = PyMem_Malloc((size_t)n);
        pos = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)n);
        if (cls == NULL || pos == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        cls[i] = (unsigned char)cls_of(PyUnicode_READ(kind, data, i));
    Py_ssize_t npos, ntag;
    layout(cls, n, keep, pos, &npos, &ntag);
    if (ntag == 0 || npos - ntag < 4) {
        result = Py_False;
        Py_INCREF(result);
        goto done;
    }
    Py_ssize_t blen;
    const uint8_t *utf8 = utf8_of(value, &blen, &owner);
    if (utf8 == NULL)
        goto done;
    blank = PyMem_Malloc((size_t)blen + 1);
    if (blank == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(blank, utf8, (size_t)blen);
    Py_ssize_t first = npos - ntag;
    if (owner == NULL) {
        for (Py_ssize_t t = first; t < npos; t++)
            blank[pos[t]] = 0;
    } else { /* char index -> byte offset */
        Py_ssize_t off = 0, t = first;
        for (Py_ssize_t i = 0; i < n && t < npos; i++) {
            if (i == pos[t]) {
                blank[off] = 0;
                t++;
            }
            off += utf8_width(PyUnicode_READ(kind, data, i));
        }
    }
    u256 num = checksum_number(blank, blen);
    int holds = 1;
    for (Py_ssize_t t = first; t < npos; t++) {
        int c = cls[pos[t]];
        unsigned r = u256_divmod(&num, alphabet_len(c));
        if ((Py_UCS4)alphabet_at(c, r) != PyUnicode_READ(kind, data, pos[t])) {
            holds = 0;
            break;
        }
    }
    result = holds ? Py_True : Py_False;
    Py_INCREF(result);
done:
    if (cls != cls_small)
        PyMem_Free(cls);
    if (pos != pos_small)
        PyMem_Free(pos);
    PyMem_Free(blank);
    Py_XDECREF(owner);
    return result;
}

/* == Keyed: HMAC-SHA256 with the padded key blocks hashed once ============================ */
typedef struct {
    PyObject_HEAD sha256_ctx inner;
    sha256_ctx outer;
} KeyedObject;

static int Keyed_init(KeyedObject *self, PyObject *args, PyObject *kwds) {
    Py_buffer key;
    uint8_t block[64], pad[64];
    if (!PyArg_ParseTuple(args, "y*:Keyed", &key))
        return -1;
    memset(block, 0, sizeof block);
    if (key.len > 64) {
        sha256_ctx s;
        sha256_init(&s);
        sha256_update(&s, key.buf, (size_t)key.len);
        sha256_final(&s, block);
    } else {
        memcpy(block, key.buf, (size_t)key.len);
    }
    PyBuffer_Release(&key);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x36;
    sha256_init(&self->inner);
    sha256_update(&self->inner, pad, 64);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x5c;
    sha256_init(&self->outer);
    sha256_update(&self->outer, pad, 64);
    return 0;
}

/* HMAC(key, purpose NUL value) where purpose is given as bytes */
static void hmac3(KeyedObject *k, const uint8_t *purpose, size_t plen, const uint8_t *value,
                  size_t vlen, uint8_t out[32]) {
    sha256_ctx s = k->inner;
    uint8_t nul = 0, d[32];
    sha256_update(&s, purpose, plen);
    sha256_update(&s, &nul, 1);
    sha256_update(&s, value, vlen);
    sha256_final(&s, d);
    s = k->outer;
    sha256_update(&s, d, 32);
    sha256_final(&s, out);
}

static PyObject *Keyed_digest(KeyedObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0]) ||
        (nargs == 2 && !PyUnicode_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "digest(value: str, purpose: str = '')");
        return NULL;
    }
    PyObject *vown, *pown = NULL;
    Py_ssize_t vlen, plen = 0;
    const uint8_t *v = utf8_of(args[0], &vlen, &vown);
    if (v == NULL)
        return NULL;
    const uint8_t *p = (const uint8_t *)"";
    if (nargs == 2) {
        p = utf8_of(args[1], &plen, &pown);
        if (p == NULL) {
            Py_XDECREF(vown);
            return NULL;
        }
    }
    uint8_t out[32];
    hmac3(self, p, (size_t)plen, v, (size_t)vlen, out);
    Py_XDECREF(vown);
    Py_XDECREF(pown);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

/* email(addr): Keyed.email(addr) for an ASCII address (None for any other) */
static PyObject *Keyed_email(KeyedObject *self, PyObject *addr) {
    if (!PyUnicode_Check(addr)) {
        PyErr_SetString(PyExc_TypeError, "email(addr: str)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(addr))
        Py_RETURN_NONE; /* str.lower() beyond ASCII: Python decides */
    Py_ssize_t n = PyUnicode_GET_LENGTH(addr);
    const char *a = (const char *)PyUnicode_DATA(addr);
    char *low = PyMem_Malloc((size_t)n + 1);
    if (low == NULL)
        return PyErr_NoMemory();
    int has_at = 0, has_pct40 = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = a[i];
        low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        has_at |= c == '@';
        if (i + 2 < n && c == '%' && a[i + 1] == '4' && a[i + 2] == '0')
            has_pct40 = 1;
    }
    uint8_t d[32];
    hmac3(self, (const uint8_t *)"email", 5, (const uint8_t *)low, (size_t)n, d);
    PyMem_Free(low);
    static const char hex[] = "0123456789abcdef";
    char out[32];
    int k = 0;
    out[k++] = 'u';
    for (int i = 0; i < 5; i++) {
        out[k++] = hex[d[i] >> 4];
        out[k++] = hex[d[i] & 15];
    }
    const char *at = !has_at && has_pct40 ? "%40" : "@";
    memcpy(out + k, at, strlen(at));
    k += (int)strlen(at);
    memcpy(out + k, "example.com", 11);
    k += 11;
    return PyUnicode_DecodeASCII(out, k, NULL);
}

/* fp(value, keep=0, numeric=False): Keyed.fp(value, keep, numeric=numeric, check=False) */
static PyObject *Keyed_fp(KeyedObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t keep = 0;
    int numeric = 0;
    if (nargs < 1 || nargs > 3 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "fp(value: str, keep: int = 0, numeric: bool = False)");
        return NULL;
    }
    if (nargs >= 2) {
        keep = PyLong_AsSsize_t(args[1]);
        if (keep == -1 && PyErr_Occurred())
            return NULL;
    }
    if (nargs == 3) {
        numeric = PyObject_IsTrue(args[2]);
        if (numeric < 0)
            return NULL;
    }
    PyObject *value = args[0];
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    /* the text grows by at most a few fill characters: 4 body + up to 30 bits of tag; short
     * values (most) use the stack, the buffers move to the heap when a large keep needs more */
    enum { SMALL = 256 };
    char text_small[SMALL];
    unsigned char cls_small[SMALL];
    Py_ssize_t pos_small[SMALL];
    uint8_t stream_small[SMALL];
    Py_ssize_t cap = n + 64;
    int heap = cap > SMALL;
    char *text = heap ? PyMem_Malloc((size_t)cap) : text_small;
    unsigned char *cls = heap ? PyMem_Malloc((size_t)cap) : cls_small;
    Py_ssize_t *pos = heap ? PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)cap) : pos_small;
    uint8_t *stream = NULL;
    PyObject *owner = NULL, *result = NULL;
    if (text == NULL || cls == NULL || pos == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int has_d = 0, has_letter = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        text[i] = ch < 0x80 ? (char)ch : 'x';
        cls[i] = (unsigned char)cls_of((Py_UCS4)(unsigned char)text[i]);
        if (i >= rest_start(n, keep)) {
            has_d |= cls[i] == C_DIGIT;
            has_letter |= cls[i] == C_LOWER || cls[i] == C_UPPER;
        }
    }
    int fill = has_d && !has_letter ? C_DIGIT : C_LOWER;
    Py_ssize_t len = n, npos, ntag;
    for (;;) {
        layout(cls, len, keep, pos, &npos, &ntag);
        if (ntag && npos - ntag >= 4)
            break;
        if (len >= cap && !heap) { /* to the heap first: the stack buffers cannot grow */
            char *t1 = PyMem_Malloc((size_t)cap);
            unsigned char *c1 = PyMem_Malloc((size_t)cap);
            Py_ssize_t *p1 = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)cap);
            heap = 1;
            if (t1 != NULL)
                memcpy(t1, text, (size_t)len);
            if (c1 != NULL)
                memcpy(c1, cls, (size_t)len);
            text = t1;
            cls = c1;
            pos = p1;
            if (t1 == NULL || c1 == NULL || p1 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        if (len >= cap) { /* a large keep: the fill has to reach past it */
            cap *= 2;
            char *t2 = PyMem_Realloc(text, (size_t)cap);
            if (t2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            text = t2;
            unsigned char *c2 = PyMem_Realloc(cls, (size_t)cap);
            if (c2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            cls = c2;
            Py_ssize_t *p2 = PyMem_Realloc(pos, sizeof(Py_ssize_t) * (size_t)cap);
            if (p2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            pos = p2;
        }
        text[len] = fill == C_DIGIT ? '0' : 'a';
        cls[len] = (unsigned char)fill;
        len++;
    }
    Py_ssize_t nbody = npos - ntag;
    /* the keyed stream: HMAC(key, "fp/<i>" NUL value) for i = 0, 1, ... */
    Py_ssize_t vlen;
    const uint8_t *v = utf8_of(value, &vlen, &owner);
    if (v == NULL)
        goto done;
    Py_ssize_t blocks = (nbody + 31) / 32;
    stream = (blocks ? blocks : 1) * 32 <= SMALL ? stream_small
                                                 : PyMem_Malloc((size_t)(blocks ? blocks : 1) * 32);
    if (stream == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t b = 0; b < blocks; b++) {
        char purpose[32], rev[24];
        int plen = 3, nr = 0;
        memcpy(purpose, "fp/", 3);
        Py_ssize_t x = b;
        do { /* f"fp/{b}" without printf */
            rev[nr++] = (char)('0' + x % 10);
            x /= 10;
        } while (x > 0);
        while (nr > 0)
            purpose[plen++] = rev[--nr];
        hmac3(self, (const uint8_t *)purpose, (size_t)plen, v, (size_t)vlen, stream + 32 * b);
    }
    for (Py_ssize_t j = 0; j < nbody; j++) {
        Py_ssize_t i = pos[j];
        int c = cls[i];
        if (numeric && j == 0 && c == C_DIGIT)
            text[i] = (char)('1' + stream[j] % 9);
        else
            text[i] = alphabet_at(c, stream[j] % alphabet_len(c));
    }
    for (Py_ssize_t t = nbody; t < npos; t++)
        text[pos[t]] = 0;
    u256 num = checksum_number((const uint8_t *)text, len);
    for (Py_ssize_t t = nbody; t < npos; t++) {
        int c = cls[pos[t]];
        text[pos[t]] = alphabet_at(c, u256_divmod(&num, alphabet_len(c)));
    }
    result = PyUnicode_DecodeASCII(text, len, NULL);
done:
    if (heap) {
        PyMem_Free(text);
        PyMem_Free(cls);
        PyMem_Free(pos);
    }
    if (stream != stream_small)
        PyMem_Free(stream);
    Py_XDECREF(owner);
    return result;
}

static PyMethodDef Keyed_methods[] = {
    {"digest", (PyCFunction)(void (*)(void))Keyed_digest, METH_FASTCALL,
     "HMAC-SHA256 of purpose NUL value (UTF-8, surrogatepass) under the key."},
    {"email", (PyCFunction)Keyed_email, METH_O,
     "The e-mail pseudonym of an ASCII address (None for any other)."},
    {"fp", (PyCFunction)(void (*)(void))Keyed_fp, METH_FASTCALL,
     "The format-preserving pseudonym (no already-a-pseudonym check)."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject KeyedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "replaygate.stages._mask_core.Keyed",
    .tp_basicsize = sizeof(KeyedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Pseudonym kernels for one key.",
    .tp_methods = Keyed_methods,
    .tp_init = (initproc)Keyed_init,
    .tp_new = PyType_GenericNew,
};

/* out.append((start, end)): 0, or -1 with an exception set */
static int append_span(PyObject *out, Py_ssize_t start, Py_ssize_t end) {
    PyObject *span = Py_BuildValue("(nn)", start, end);
    int rc = span == NULL ? -1 : PyList_Append(out, span);
    Py_XDECREF(span);
    return rc;
}

/* == b64_spans(text): _detectors.b64_runs ================================================ */
static inline int b64_char(Py_UCS4 ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '_' || ch == '-';
}

/* [(start, end)] of every maximal run of 16+ base64 characters ([A-Za-z0-9+/_-]) followed by
 * at most two '=' and then no [A-Za-z0-9_+/=-]: the end includes the padding */
static PyObject *core_b64_spans(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "b64_spans(text: str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    while (i < n) {
        if (!b64_char(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t s = i;
        while (i < n && b64_char(PyUnicode_READ(kind, data, i)))
            i++;
        if (i - s < 16)
            continue;
        Py_ssize_t e = i;
        while (e < n && e - i < 3 && PyUnicode_READ(kind, data, e) == '=')
            e++;
        if (e - i > 2)
            continue; /* three or more '=' */
        if (e < n) {
            Py_UCS4 c = PyUnicode_READ(kind, data, e);
            if (b64_char(c) || c == '=')
                continue;
        }
        if (append_span(out, s, e) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* == card_ok(text): _detectors._card_ok for an ASCII text (None for any other) ============ */
static PyObject *core_card_ok(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "card_ok(text: str)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE; /* str.isdigit() knows other digits: Python decides */
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), count = 0;
    const char *s = (const char *)PyUnicode_DATA(text);
    int digits[32];
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (count == 19)
                Py_RETURN_FALSE;
            digits[count++] = s[i] - '0';
        }
    }
    if (count < 13)
        Py_RETURN_FALSE;
    int total = 0;
    for (Py_ssize_t i = 0; i < count; i++) { /* luhn_valid: every second digit from the right */
        int d = digits[count - 1 - i];
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        total += d;
    }
    if (total % 10 == 0)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* == enclosing(t, found, custom, field_only, crossing): _mask_json._enclosing ============= */
static int set_item(PyObject *d, PyObject *k, PyObject *v) { return PyDict_SetItem(d, k, v); }

static PyObject *core_enclosing(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyUnicode_Check(args[0]) || !PyList_Check(args[1]) ||
        !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "enclosing(t: str, found: list, custom: bool, field_only: str, crossing)");
        return NULL;
    }
    PyObject *t = args[0], *found = args[1], *field_only = args[3], *crossing = args[4];
    int custom = PyObject_IsTrue(args[2]);
    if (custom < 0)
        return NULL;
    Py_ssize_t nf = PyList_GET_SIZE(found), tlen = PyUnicode_GET_LENGTH(t);
    int marks = !custom;
    for (Py_ssize_t i = 0; marks && i < nf; i++) {
        PyObject *f = PyList_GET_ITEM(found, i);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 3) {
            PyErr_SetString(PyExc_TypeError, "enclosing: findings are (rule, start, end)");
            return NULL;
        }
        int c = PySequence_Contains(crossing, PyTuple_GET_ITEM(f, 0));
        if (c < 0)
            return NULL;
        marks = !c;
    }
    PyObject *out = PyDict_New(), *empty = PyUnicode_FromStringAndSize("", 0);
    if (out == NULL || empty == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < nf; i++) {
        PyObject *f = PyList_GET_ITEM(found, i);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 3) {
            PyErr_SetString(PyExc_TypeError, "enclosing: findings are (rule, start, end)");
            goto fail;
        }
        PyObject *rule = PyTuple_GET_ITEM(f, 0);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(f, 1));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(f, 2));
        if ((start == -1 || end == -1) && PyErr_Occurred())
            goto fail;
        if (start < 0 || end < start || end > tlen) {
            PyErr_SetString(PyExc_ValueError, "enclosing: a finding outside the text");
            goto fail;
        }
        PyObject *v = PyUnicode_Substring(t, start, end);
        if (v == NULL)
            goto fail;
        Py_ssize_t qs = start > 0 ? PyUnicode_FindChar(t, '"', 0, start, -1) : -1;
        Py_ssize_t qe = PyUnicode_FindChar(t, '"', end, tlen, 1);
        if (qs == -2 || qe == -2) {
            Py_DECREF(v);
            goto fail;
        }
        PyObject *enc = NULL; /* the string around the match, when both quotes are there */
        if (qs >= 0 && qe >= 0) {
            enc = PyUnicode_Substring(t, qs + 1, qe);
            if (enc == NULL) {
                Py_DECREF(v);
                goto fail;
            }
        }
        int ok = 0, is_field = PyUnicode_CompareWithASCIIString(rule, "field") == 0;
        if (is_field) {
            PyObject *mark = marks ? field_only : empty;
            if (PyDict_SetDefault(out, v, mark) == NULL)
                ok = -1;
            else if (enc != NULL) {
                PyObject *cur = marks ? PyDict_GetItemWithError(out, enc) : NULL;
                if (cur == NULL && PyErr_Occurred())
                    ok = -1;
                else {
                    int same = 1;
                    if (marks && cur != NULL) {
                        same = PyUnicode_Compare(cur, field_only) == 0;
                        if (same == 0 && PyErr_Occurred())
                            ok = -1;
                    }
                    if (ok == 0)
                        ok = set_item(out, enc, marks && same ? field_only : empty);
                }
            }
        } else if (qs + 1 == start && qe == end) {
            PyObject *cur = PyDict_GetItemWithError(out, v);
            if (cur == NULL && PyErr_Occurred())
                ok = -1;
            else {
                int same = cur == NULL ? 1 : PyObject_RichCompareBool(cur, rule, Py_EQ);
                ok = same < 0 ? -1 : set_item(out, v, same ? rule : empty);
            }
        } else {
            PyObject *cur = PyDict_GetItemWithError(out, v);
            if (cur == NULL && PyErr_Occurred())
                ok = -1;
            else {
                int only = cur == NULL ? 1 : PyObject_RichCompareBool(cur, field_only, Py_EQ);
                if (only < 0)
                    ok = -1;
                else if (only)
                    ok = set_item(out, v, empty);
                if (ok == 0 && enc != NULL)
                    ok = set_item(out, enc, empty);
            }
        }
        Py_DECREF(v);
        Py_XDECREF(enc);
        if (ok < 0)
            goto fail;
    }
    Py_DECREF(empty);
    return out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(empty);
    return NULL;
}

/* == email_spans(text): _detectors._emails ================================================= */
#define RD(i) PyUnicode_READ(kind, data, (i))

static inline int ascii_alnum(Py_UCS4 c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static inline int ascii_alpha(Py_UCS4 c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static inline int local_char(Py_UCS4 c) {
    return ascii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* the end of _EMAIL_DOMAIN matched at p, or -1 (-2: out of memory, error set): labels (1-63 of [A-Za-z0-9-], alphanumeric at
 * both ends) joined by dots, then a dot and 2-24 letters not followed by [A-Za-z0-9_-]; the
 * regex's backtracking tries the most labels first */
static Py_ssize_t domain_end(int kind, const void *data, Py_ssize_t n, Py_ssize_t p) {
    Py_ssize_t dots[64], nd = 0, q = p;
    Py_ssize_t *dot = dots, cap = 64;
    Py_ssize_t result = -1;
    for (;;) {
        Py_ssize_t r = q;
        while (r < n && (ascii_alnum(RD(r)) || RD(r) == '-'))
            r++;
        if (r == q || r - q > 63 || !ascii_alnum(RD(q)) || !ascii_alnum(RD(r - 1)) || r >= n ||
            RD(r) != '.')
            break;
        if (nd == cap) {
            Py_ssize_t *more = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)cap * 2);
            if (more == NULL) {
                if (dot != dots)
                    PyMem_Free(dot);
                PyErr_NoMemory();
                return -2;
            }
            memcpy(more, dot, sizeof(Py_ssize_t) * (size_t)nd);
            if (dot != dots)
                PyMem_Free(dot);
            dot = more;
            cap *= 2;
        }
        dot[nd++] = r;
        q = r + 1;
    }
    for (Py_ssize_t j = nd - 1; j >= 0; j--) {
        Py_ssize_t t = dot[j] + 1, c = 0;
        while (c < 24 && t + c < n && ascii_alpha(RD(t + c)))
            c++;
        if (c < 2)
            continue;
        if (t + c < n) {
            Py_UCS4 after = RD(t + c);
            if (ascii_alnum(after) || after == '_' || after == '-')
                continue;
        }
        result = t + c;
        break;
    }
    if (dot != dots)
        PyMem_Free(dot);
    return result;
}

static PyObject *core_email_spans(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "email_spans(text: str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (int sep = 0; sep < 2; sep++) { /* "@", then "%40" */
        Py_ssize_t seplen = sep ? 3 : 1;
        for (Py_ssize_t i = 0; i + seplen <= n; i++) {
            if (sep == 0 ? RD(i) != '@' : (RD(i) != '%' || RD(i + 1) != '4' || RD(i + 2) != '0'))
                continue;
            Py_ssize_t k = 0;
            while (k < 64 && i - 1 - k >= 0 && local_char(RD(i - 1 - k)))
                k++;
            if (k == 0)
                continue;
            Py_ssize_t start = i - k;
            if (start > 0) {
                Py_UCS4 before = RD(start - 1);
                if (Py_UNICODE_ISALNUM(before) || before == '.' || before == '_' ||
                    before == '%' || before == '+' || before == '-')
                    continue;
            }
            Py_ssize_t end = domain_end(kind, data, n, i + seplen);
            if (end == -2) {
                Py_DECREF(out);
                return NULL;
            }
            if (end < 0)
                continue;
            if (append_span(out, start, end) < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    return out;
}
#undef RD

#include "_mask_leaf.h"
#include "_mask_jsonc.h"

static PyMethodDef core_methods[] = {
    {"mask_json", (PyCFunction)(void (*)(void))core_mask_json, METH_FASTCALL,
     "The compiled JSON masker (see _mask_jsonc.h)."},
    {"mask_head", (PyCFunction)(void (*)(void))core_mask_head, METH_FASTCALL,
     "Masker.headers and Masker.target for the common heads (see _mask_jsonc.h)."},
    {"mask_named", (PyCFunction)(void (*)(void))core_mask_named, METH_FASTCALL,
     "ValueMasker.named for the values the compiled masker does alone (see _mask_jsonc.h)."},
    {"email_spans", (PyCFunction)core_email_spans, METH_O,
     "The spans of _detectors._emails, in its order."},
    {"enclosing", (PyCFunction)(void (*)(void))core_enclosing, METH_FASTCALL,
     "_mask_json._enclosing: each match and the JSON string around it -> its hits value."},
    {"card_ok", (PyCFunction)core_card_ok, METH_O,
     "13 to 19 digits that pass the Luhn check (None when the text is not ASCII)."},
    {"b64_spans", (PyCFunction)core_b64_spans, METH_O,
     "The spans of the base64 runs of _detectors.b64_runs."},
    {"is_pseudonym", (PyCFunction)(void (*)(void))core_is_pseudonym, METH_FASTCALL,
     "True when value carries a valid format-preserving checksum."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_mask_core", "Compiled pseudonym kernels (see _mask_fp.py).", -1,
    core_methods};

PyMODINIT_FUNC PyInit__mask_core(void) {
    sha256_choose();
    BITS_D = log2(10.0);
    BITS_L = log2(26.0);
    if (PyType_Ready(&KeyedType) < 0 || PyType_Ready(&LeafConfigType) < 0 ||
        PyType_Ready(&JsonKeysType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&KeyedType);
    Py_INCREF(&LeafConfigType);
    Py_INCREF(&JsonKeysType);
    if (PyModule_AddObject(m, "Keyed", (PyObject *)&KeyedType) < 0 ||
        PyModule_AddObject(m, "LeafConfig", (PyObject *)&LeafConfigType) < 0 ||
        PyModule_AddObject(m, "JsonKeys", (PyObject *)&JsonKeysType) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", SOURCE_HASH) < 0 ||
        PyModule_AddIntConstant(m, "NAMED_MAX", NAMED_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
