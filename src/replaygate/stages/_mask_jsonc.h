/* The compiled JSON masker (included by _mask_core.c, after _mask_leaf.h).
 *
 * mask_json(body, ctx) masks one JSON body the way Masker._body does with the Python walk
 * (JsonMasker.json_doc with the hits of the raw-text pass, then orjson.dumps), for bodies
 * without a backslash and rules with the default actions (JsonMasker.count_into builds ctx):
 *
 *   - the body is checked first (strict JSON, UTF-8, no duplicate key, nesting <= 200):
 *     anything else answers NotImplemented before anything is recorded, and the Python walk
 *     masks it (so errors and odd bodies keep their exact old behaviour);
 *   - then one walk writes the masked body as orjson.dumps writes it (no whitespace, numbers
 *     in orjson's form: the ones that are not are written by ctx's float_text, asked during
 *     the check): keys whose name is a secret field (FieldMatcher, cached per key in a small
 *     table) mask every string below them as ValueMasker.named does; other strings go
 *     through the leaf classifier (_mask_leaf.h): clean ones are copied, one whole e-mail is
 *     pseudonymized here (ValueMasker._detected), anything else is handed to Python
 *     (JsonMasker._json_sub / _json_named / _json_detected), which records its own findings.
 *     Numbers under a secret name, and 13-19 character integers (a card check), go to Python.
 *   - counts (e-mail and field findings, masked or already masked) are added to ctx's two
 *     Counters at the end.
 *
 * Returns the masked body (bytes), None when nothing changed, NotImplemented as above.
 * The tests (tests/stages/test_mask_jsonc.py) compare it with the Python walk byte for byte.
 */

/* the named cache's bound (_mask_values._NAMED_MAX: the head path's memos rely on both
 * clearing it at the same size; a test holds them equal) */
#define NAMED_MAX 8192

/* the slots of ctx (JsonMasker.count_into) */
enum {
    CX_LEAF,
    CX_KEYED,
    CX_KNOWN,
    CX_MATCHES,
    CX_NAMED,
    CX_DET,
    CX_FINDINGS,
    CX_ALREADY,
    CX_SUB,
    CX_NAMEDFN,
    CX_DETFN,
    CX_FLOAT,
    CX_KEYS,
    CX_N
};

/* == JsonKeys: field-name verdicts per key, by the key's bytes ============================= */
#define JK_SLOTS 2048 /* a power of two; the table is emptied when half full */
#define JK_ARENA 65536

typedef struct {
    uint64_t h;
    uint32_t off;
    uint16_t len;
    uint8_t used;
    uint8_t field;
} jk_slot;

typedef struct {
    PyObject_HEAD jk_slot slots[JK_SLOTS];
    uint32_t count, arena_used;
    char arena[JK_ARENA];
} JsonKeysObject;

static uint64_t jk_hash(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* 1 / 0: the verdict remembered for key s[0:n]; -1: not known */
static int jk_get(JsonKeysObject *t, const unsigned char *s, Py_ssize_t n, uint64_t h) {
    for (uint32_t i = (uint32_t)h & (JK_SLOTS - 1);; i = (i + 1) & (JK_SLOTS - 1)) {
        jk_slot *e = &t->slots[i];
        if (!e->used)
            return -1;
        if (e->h == h && e->len == n && memcmp(t->arena + e->off, s, (size_t)n) == 0)
            return e->field;
    }
}

static void jk_put(JsonKeysObject *t, const unsigned char *s, Py_ssize_t n, uint64_t h,
                   int field) {
    if (n > 255)
        return; /* long keys are asked each time */
    if (t->count >= JK_SLOTS / 2 || t->arena_used + (uint32_t)n > JK_ARENA) {
        memset(t->slots, 0, sizeof t->slots);
        t->count = 0;
        t->arena_used = 0;
    }
    uint32_t i = (uint32_t)h & (JK_SLOTS - 1);
    while (t->slots[i].used)
        i = (i + 1) & (JK_SLOTS - 1);
    memcpy(t->arena + t->arena_used, s, (size_t)n);
    t->slots[i] = (jk_slot){h, t->arena_used, (uint16_t)n, 1, (uint8_t)field};
    t->arena_used += (uint32_t)n;
    t->count++;
}

static int JsonKeys_init(JsonKeysObject *self, PyObject *args, PyObject *kwds) {
    (void)kwds;
    if (!PyArg_ParseTuple(args, ":JsonKeys"))
        return -1;
    memset(self->slots, 0, sizeof self->slots);
    self->count = 0;
    self->arena_used = 0;
    return 0;
}

static PyTypeObject JsonKeysType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "replaygate.stages._mask_core.JsonKeys",
    .tp_basicsize = sizeof(JsonKeysObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled JSON masker's table of field-name verdicts per key.",
    .tp_init = (initproc)JsonKeys_init,
    .tp_new = PyType_GenericNew,
};

/* == pseudonym tests and e-mail pseudonyms on ASCII bytes ================================= */

/* fp_is_pseudonym(value) (keep 0) for an ASCII value */
static int jm_is_pseudo(const unsigned char *s, Py_ssize_t n) {
    unsigned char cls_small[256];
    Py_ssize_t pos_small[256];
    unsigned char *cls = cls_small;
    Py_ssize_t *pos = pos_small;
    int holds = 0;
    if (n > 256) {
        cls = PyMem_Malloc((size_t)n);
        pos = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)n);
        if (cls == NULL || pos == NULL) {
            PyMem_Free(cls == cls_small ? NULL : cls);
            PyMem_Free(pos == pos_small ? NULL : pos);
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        cls[i] = (unsigned char)cls_of(s[i]);
    Py_ssize_t npos, ntag;
    layout(cls, n, 0, pos, &npos, &ntag);
    if (ntag > 0 && npos - ntag >= 4) {
        uint8_t blank_small[256];
        uint8_t *blank = n > 256 ? PyMem_Malloc((size_t)n) : blank_small;
        if (blank == NULL) {
            holds = -1;
            PyErr_NoMemory();
        } else {
            memcpy(blank, s, (size_t)n);
            Py_ssize_t first = npos - ntag;
            for (Py_ssize_t t = first; t < npos; t++)
                blank[pos[t]] = 0;
            u256 num = checksum_number(blank, n);
            holds = 1;
            for (Py_ssize_t t = first; t < npos; t++) {
                int c = cls[pos[t]];
                unsigned r = u256_divmod(&num, alphabet_len(c));
                if ((unsigned char)alphabet_at(c, r) != s[pos[t]]) {
                    holds = 0;
                    break;
                }
            }
            if (blank != blank_small)
                PyMem_Free(blank);
        }
    }
    if (cls != cls_small)
        PyMem_Free(cls);
    if (pos != pos_small)
        PyMem_Free(pos);
    return holds;
}

/* a redaction marker: \[redacted:[0-9a-f]{6}\] */
static int jm_is_redacted(const unsigned char *s, Py_ssize_t n) {
    if (n != 17 || memcmp(s, "[redacted:", 10) != 0 || s[16] != ']')
        return 0;
    for (int i = 10; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int jm_ends_with(const char *low, Py_ssize_t n, const char *tail) {
    Py_ssize_t k = (Py_ssize_t)strlen(tail);
    return n >= k && memcmp(low + n - k, tail, (size_t)k) == 0;
}

/* Keyed.email_is_pseudonym for an ASCII address (its domain is a reserved one) */
static int jm_email_is_pseudo(const unsigned char *s, Py_ssize_t n) {
    char low_small[256];
    char *low = n > 256 ? PyMem_Malloc((size_t)n) : low_small;
    if (low == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t at = -1, pct = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (c == '@')
            at = i;
    }
    Py_ssize_t dom;
    if (at >= 0) {
        dom = at + 1;
    } else {
        for (Py_ssize_t i = 0; i + 2 < n; i++)
            if (low[i] == '%' && low[i + 1] == '4' && low[i + 2] == '0')
                pct = i;
        dom = pct >= 0 ? pct + 3 : 0;
    }
    const char *d = low + dom;
    Py_ssize_t dn = n - dom;
    int r = (dn == 11 && (memcmp(d, "example.com", 11) == 0 || memcmp(d, "example.net", 11) == 0 ||
                          memcmp(d, "example.org", 11) == 0)) ||
            jm_ends_with(d, dn, ".example") || jm_ends_with(d, dn, ".invalid") ||
            jm_ends_with(d, dn, ".test") || jm_ends_with(d, dn, ".localhost");
    if (low != low_small)
        PyMem_Free(low);
    return r;
}

/* Keyed.email of an ASCII address into out (at least 32 bytes): its length, -1 on error */
static Py_ssize_t jm_email(KeyedObject *k, const unsigned char *s, Py_ssize_t n, char *out) {
    char low_small[256] = {0};
    char *low = n > 256 ? PyMem_Malloc((size_t)n) : low_small;
    if (low == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int has_at = 0, has_pct40 = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        has_at |= c == '@';
        if (i + 2 < n && c == '%' && s[i + 1] == '4' && s[i + 2] == '0')
            has_pct40 = 1;
    }
    uint8_t d[32];
    hmac3(k, (const uint8_t *)"email", 5, (const uint8_t *)low, (size_t)n, d);
    if (low != low_small)
        PyMem_Free(low);
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t j = 0;
    out[j++] = 'u';
    for (int i = 0; i < 5; i++) {
        out[j++] = hex[d[i] >> 4];
        out[j++] = hex[d[i] & 15];
    }
    if (!has_at && has_pct40) {
        memcpy(out + j, "%40", 3);
        j += 3;
    } else {
        out[j++] = '@';
    }
    memcpy(out + j, "example.com", 11);
    return j + 11;
}

/* the ASCII digits of s[0:n] into d (at most 32; -1 when there are more) */
static int jm_digits(const unsigned char *s, Py_ssize_t n, char *d) {
    int k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (k == 32)
                return -1;
            d[k++] = (char)s[i];
        }
    }
    return k;
}

static int jm_luhn_valid(const char *d, int k) {
    int total = 0;
    for (int i = 0; i < k; i++) {
        int x = d[k - 1 - i] - '0';
        if (i % 2 == 1) {
            x *= 2;
            if (x > 9)
                x -= 9;
        }
        total += x;
    }
    return total % 10 == 0;
}

/* Keyed.card_is_pseudonym for an ASCII text */
static int jm_card_is_pseudo(const unsigned char *s, Py_ssize_t n) {
    char d[32];
    int k = jm_digits(s, n, d);
    return k >= 8 && memcmp(d, "40000000", 8) == 0 && jm_luhn_valid(d, k);
}

/* Keyed.card of an ASCII text with 13-32 digits into out (n bytes); 0, or -1 when Python
 * must do it (another count of digits) */
static int jm_card(KeyedObject *key, const unsigned char *s, Py_ssize_t n, char *out) {
    char d[32], neu[32];
    int k = jm_digits(s, n, d);
    if (k < 13)
        return -1;
    uint8_t st[32];
    hmac3(key, (const uint8_t *)"card/0", 6, (const uint8_t *)d, (size_t)k, st);
    memcpy(neu, "40000000", 8);
    for (int j = 0; j < k - 9; j++)
        neu[8 + j] = (char)('0' + st[j] % 10);
    int total = 0; /* _luhn_digit of neu[0:k-1]: the check digit will be at position 0 */
    for (int i = 0; i < k - 1; i++) {
        int x = neu[k - 2 - i] - '0';
        if (i % 2 == 0) {
            x *= 2;
            if (x > 9)
                x -= 9;
        }
        total += x;
    }
    neu[k - 1] = (char)('0' + (10 - total % 10) % 10);
    int j = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = s[i] >= '0' && s[i] <= '9' ? neu[j++] : (char)s[i];
    return 0;
}

/* does s[0:n] hold the NUL-terminated lit? */
static int jm_find(const unsigned char *s, Py_ssize_t n, const char *lit) {
    size_t k = strlen(lit);
    const unsigned char *p = s, *end = s + n;
    while ((size_t)(end - p) >= k) {
        p = memchr(p, lit[0], (size_t)(end - p) - k + 1);
        if (p == NULL)
            return 0;
        if (memcmp(p, lit, k) == 0)
            return 1;
        p++;
    }
    return 0;
}

/* == the check (pass 1) ==================================================================== */
typedef struct {
    const unsigned char *s;
    Py_ssize_t n;
    PyObject *float_fn;
    PyObject *numfix; /* [offset, bytes, offset, bytes...]: numbers orjson writes otherwise */
    int fail;         /* 1: not for us (NotImplemented), -1: a Python error */
    /* an integer that orjson reads as one but whose numeric pseudonym (same digit count) may
     * leave orjson's range (20 digits <= 2**64-1, or 19 digits >= -2**63), and a float that
     * repr writes otherwise than orjson (1e-07 / 1e-7): when a secret name holds the first,
     * the Python walk writes the whole body with json.dumps (_dumps), so repr's floats */
    int wide_int, float_repr;
} jcheck;

/* repr() of the number token t[0:k] (a PyMem string to free; t copied to buf with its NUL),
 * or NULL when it is too long or no number */
static char *jm_float_repr(const char *t, Py_ssize_t k, char buf[64]) {
    if (k >= 64)
        return NULL;
    memcpy(buf, t, (size_t)k);
    buf[k] = 0;
    double d = PyOS_string_to_double(buf, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    char *r = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL)
        PyErr_Clear();
    return r;
}

/* does repr() write the float orjson wrote as t[0:k] otherwise? (0 for an integer) */
static int jc_repr_differs(const char *t, Py_ssize_t k) {
    char buf[64];
    if (memchr(t, '.', (size_t)k) == NULL && memchr(t, 'e', (size_t)k) == NULL)
        return 0;
    char *r = jm_float_repr(t, k, buf);
    if (r == NULL)
        return 1;
    int differs = strcmp(r, buf) != 0;
    PyMem_Free(r);
    return differs;
}

#define JM_MAX_DEPTH 200
#define JM_MAX_KEYS 4096

static inline Py_ssize_t jm_ws(const unsigned char *s, Py_ssize_t n, Py_ssize_t p) {
    while (p < n && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t'))
        p++;
    return p;
}

/* the end of the string starting at s[p] == '"' (after the closing quote), or -1 */
static Py_ssize_t jc_string(jcheck *c, Py_ssize_t p) {
    const unsigned char *s = c->s;
    Py_ssize_t n = c->n;
    p++;
    /* the closing quote (no escape: the caller checked the body holds no backslash), then
     * the text before it: no control character, strict UTF-8 (a quote is never inside a
     * UTF-8 sequence) */
    const unsigned char *q = memchr(s + p, '"', (size_t)(n - p));
    if (q == NULL) {
        c->fail = 1;
        return -1;
    }
    Py_ssize_t e = q - s;
    while (p < e) {
        while (p + 8 <= e) { /* 8 bytes at a time while all are printable ASCII */
            uint64_t x;
            memcpy(&x, s + p, 8);
            uint64_t ctl = (x - 0x2020202020202020ULL) & ~x & 0x8080808080808080ULL;
            if (ctl | (x & 0x8080808080808080ULL))
                break;
            p += 8;
        }
        if (p >= e)
            break;
        unsigned char b = s[p];
        if (b == '\\' || b < 0x20) {
            c->fail = 1;
            return -1;
        }
        if (b < 0x80) {
            p++;
            continue;
        }
        int need;
        unsigned char lo, hi;
        if (!utf8_lead(b, &need, &lo, &hi)) {
            c->fail = 1;
            return -1;
        }
        if (p + need >= e || s[p + 1] < lo || s[p + 1] > hi) {
            c->fail = 1;
            return -1;
        }
        for (Py_ssize_t k = 2; k <= need; k++) {
            if (s[p + k] < 0x80 || s[p + k] > 0xBF) {
                c->fail = 1;
                return -1;
            }
        }
        p += need + 1;
    }
    return e + 1;
}

/* is the number token s[0:n] written as orjson.dumps(orjson.loads(token)) writes it? */
static int jc_canonical_number(const unsigned char *s, Py_ssize_t n, int is_int, int has_exp) {
    if (has_exp)
        return 0;
    if (is_int) {
        Py_ssize_t digits = n - (s[0] == '-');
        if (digits > 18)
            return 0;
        return !(n == 2 && s[0] == '-' && s[1] == '0');
    }
    /* most floats without a call: at most 15 significant digits (a decimal that short names
     * its double alone, so it is the shortest form repr and orjson write), no trailing zero
     * but in "x.0", and 1e-4 <= |x| < 1e16 (where they write no exponent) */
    {
        Py_ssize_t i0 = s[0] == '-';
        const unsigned char *dotp = memchr(s, '.', (size_t)n);
        if (dotp != NULL) {
            Py_ssize_t dot = dotp - s, ilen = dot - i0, flen = n - dot - 1;
            int int_zero = ilen == 1 && s[i0] == '0';
            if (flen == 1 && s[n - 1] == '0') {
                if (int_zero || ilen <= 15)
                    return 1;
            } else if (s[n - 1] != '0') {
                if (int_zero) {
                    Py_ssize_t lead0 = 0;
                    while (lead0 < flen && s[dot + 1 + lead0] == '0')
                        lead0++;
                    if (lead0 <= 3 && flen - lead0 <= 15)
                        return 1;
                } else if (ilen + flen <= 15) {
                    return 1;
                }
            }
        }
    }
    char buf[64];
    char *r = jm_float_repr((const char *)s, n, buf);
    if (r == NULL)
        return 0;
    int same = strcmp(r, buf) == 0 && strchr(r, 'e') == NULL;
    PyMem_Free(r);
    return same;
}

static Py_ssize_t jc_number(jcheck *c, Py_ssize_t p) {
    const unsigned char *s = c->s;
    Py_ssize_t n = c->n, start = p;
    int is_int = 1, has_exp = 0;
    if (p < n && s[p] == '-')
        p++;
    if (p >= n)
        goto bad;
    if (s[p] == '0') {
        p++;
    } else if (s[p] >= '1' && s[p] <= '9') {
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    } else {
        goto bad;
    }
    if (p < n && s[p] == '.') {
        is_int = 0;
        p++;
        if (p >= n || s[p] < '0' || s[p] > '9')
            goto bad;
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        is_int = 0;
        has_exp = 1;
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || s[p] < '0' || s[p] > '9')
            goto bad;
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (is_int) {
        Py_ssize_t neg = s[start] == '-', digits = p - start - neg;
        if ((!neg && digits == 20 && memcmp(s + start, "18446744073709551615", 20) <= 0) ||
            (neg && digits == 19 && memcmp(s + start + 1, "9223372036854775808", 19) <= 0))
            c->wide_int = 1;
    }
    if (!jc_canonical_number(s + start, p - start, is_int, has_exp)) {
        PyObject *tok = PyBytes_FromStringAndSize((const char *)s + start, p - start);
        if (tok == NULL) {
            c->fail = -1;
            return -1;
        }
        PyObject *fixed = PyObject_CallOneArg(c->float_fn, tok);
        Py_DECREF(tok);
        if (fixed == NULL || !PyBytes_Check(fixed)) {
            /* orjson refuses it (infinity...): the Python walk decides what to do */
            Py_XDECREF(fixed);
            PyErr_Clear();
            c->fail = 1;
            return -1;
        }
        if (c->numfix == NULL && (c->numfix = PyList_New(0)) == NULL) {
            Py_DECREF(fixed);
            c->fail = -1;
            return -1;
        }
        if (!c->float_repr)
            c->float_repr = jc_repr_differs(PyBytes_AS_STRING(fixed), PyBytes_GET_SIZE(fixed));
        PyObject *off = PyLong_FromSsize_t(start);
        int bad = off == NULL || PyList_Append(c->numfix, off) < 0 ||
                  PyList_Append(c->numfix, fixed) < 0;
        Py_XDECREF(off);
        Py_DECREF(fixed);
        if (bad) {
            c->fail = -1;
            return -1;
        }
    }
    return p;
bad:
    c->fail = 1;
    return -1;
}

static Py_ssize_t jc_value(jcheck *c, Py_ssize_t p, int depth);

static Py_ssize_t jc_container(jcheck *c, Py_ssize_t p, int depth) {
    const unsigned char *s = c->s;
    Py_ssize_t n = c->n;
    int obj = s[p] == '{';
    unsigned char close = obj ? '}' : ']';
    if (depth > JM_MAX_DEPTH) {
        c->fail = 1;
        return -1;
    }
    Py_ssize_t keys_small[2 * 32];
    Py_ssize_t *keys = keys_small, nkeys = 0, cap = 32;
    Py_ssize_t result = -1;
    p = jm_ws(s, n, p + 1);
    if (p < n && s[p] == close)
        return p + 1;
    for (;;) {
        if (obj) {
            if (p >= n || s[p] != '"') {
                c->fail = 1;
                goto done;
            }
            Py_ssize_t ks = p + 1, ke = jc_string(c, p);
            if (ke < 0)
                goto done;
            Py_ssize_t klen = ke - 1 - ks;
            for (Py_ssize_t i = 0; i < nkeys; i++) { /* a duplicate key: orjson keeps one */
                if (keys[2 * i + 1] == klen && memcmp(s + keys[2 * i], s + ks, (size_t)klen) == 0) {
                    c->fail = 1;
                    goto done;
                }
            }
            if (nkeys == cap) {
                if (cap >= JM_MAX_KEYS) {
                    c->fail = 1;
                    goto done;
                }
                Py_ssize_t *more = PyMem_Malloc(sizeof(Py_ssize_t) * 4 * (size_t)cap);
                if (more == NULL) {
                    PyErr_NoMemory();
                    c->fail = -1;
                    goto done;
                }
                memcpy(more, keys, sizeof(Py_ssize_t) * 2 * (size_t)nkeys);
                if (keys != keys_small)
                    PyMem_Free(keys);
                keys = more;
                cap *= 2;
            }
            keys[2 * nkeys] = ks;
            keys[2 * nkeys + 1] = klen;
            nkeys++;
            p = jm_ws(s, n, ke);
            if (p >= n || s[p] != ':') {
                c->fail = 1;
                goto done;
            }
            p = jm_ws(s, n, p + 1);
        }
        p = jc_value(c, p, depth + 1);
        if (p < 0)
            goto done;
        p = jm_ws(s, n, p);
        if (p < n && s[p] == ',') {
            p = jm_ws(s, n, p + 1);
            continue;
        }
        if (p < n && s[p] == close) {
            result = p + 1;
            goto done;
        }
        c->fail = 1;
        goto done;
    }
done:
    if (keys != keys_small)
        PyMem_Free(keys);
    return result;
}

static Py_ssize_t jc_value(jcheck *c, Py_ssize_t p, int depth) {
    const unsigned char *s = c->s;
    Py_ssize_t n = c->n;
    if (p >= n) {
        c->fail = 1;
        return -1;
    }
    switch (s[p]) {
    case '{':
    case '[':
        return jc_container(c, p, depth);
    case '"':
        return jc_string(c, p);
    case 't':
        if (p + 4 <= n && memcmp(s + p, "true", 4) == 0)
            return p + 4;
        break;
    case 'f':
        if (p + 5 <= n && memcmp(s + p, "false", 5) == 0)
            return p + 5;
        break;
    case 'n':
        if (p + 4 <= n && memcmp(s + p, "null", 4) == 0)
            return p + 4;
        break;
    default:
        return jc_number(c, p);
    }
    c->fail = 1;
    return -1;
}

/* == the walk (pass 2) ===================================================================== */
enum { N_EMAIL, N_EMAIL_MASKED, N_FIELD, N_FIELD_MASKED, N_CARD, N_CARD_MASKED, N_COUNTS };

typedef struct {
    const unsigned char *s;
    Py_ssize_t n;
    PyObject *const *cx;
    const leaf_cfg *leaf;
    KeyedObject *keyed;
    JsonKeysObject *keys;
    PyObject *numfix;
    Py_ssize_t numfix_i;
    char *o;
    Py_ssize_t on, ocap;
    int changed;
    long counts[N_COUNTS];
    /* strict: the optimistic single pass (checking as it walks, no Python callback); it
     * gives up (retry = 1) for the check-then-walk passes whenever it cannot go on */
    int strict, retry, depth;
    jcheck *chk;
} jwalk;

/* the single pass cannot go on: retry with the check first (nothing was counted) */
static int jw_retry(jwalk *w) {
    w->retry = 1;
    return -1;
}

static int jw_grow(jwalk *w, Py_ssize_t more) {
    if (w->on + more <= w->ocap)
        return 0;
    Py_ssize_t cap = w->ocap * 2;
    if (cap < w->on + more)
        cap = w->on + more + 256;
    char *o = PyMem_Realloc(w->o, (size_t)cap);
    if (o == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->o = o;
    w->ocap = cap;
    return 0;
}

static inline int jw_put(jwalk *w, const void *p, Py_ssize_t k) {
    if (jw_grow(w, k) < 0)
        return -1;
    memcpy(w->o + w->on, p, (size_t)k);
    w->on += k;
    return 0;
}

static inline int jw_byte(jwalk *w, char b) {
    if (w->on >= w->ocap && jw_grow(w, 1) < 0)
        return -1;
    w->o[w->on++] = b;
    return 0;
}

/* a str as orjson.dumps writes it (quotes, escapes for '"', '\\' and control characters) */
static int jw_pystr(jwalk *w, PyObject *str) {
    Py_ssize_t k;
    const char *u = PyUnicode_AsUTF8AndSize(str, &k);
    if (u == NULL)
        return -1;
    if (jw_grow(w, 2 + 6 * k) < 0)
        return -1;
    char *o = w->o + w->on;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            switch (c) {
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    w->on = o - w->o;
    return 0;
}

/* a string value (s[a:b], without quotes) replaced by str when it differs */
static int jw_replace(jwalk *w, Py_ssize_t a, Py_ssize_t b, PyObject *str) {
    Py_ssize_t k;
    const char *u = PyUnicode_AsUTF8AndSize(str, &k);
    if (u == NULL)
        return -1;
    if (k == b - a && memcmp(u, w->s + a, (size_t)k) == 0)
        return jw_put(w, w->s + a - 1, b - a + 2);
    w->changed = 1;
    return jw_pystr(w, str);
}

static int jw_ascii(const unsigned char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return 0;
    return 1;
}

/* JSON text from Python (a bytes or str of orjson.dumps) in place of s[a:b] (a whole value),
 * or the value itself when the answer is None */
static int jw_json_answer(jwalk *w, PyObject *r, Py_ssize_t a, Py_ssize_t b, int canonical) {
    if (r == Py_None)
        return canonical ? jw_put(w, w->s + a, b - a) : 1;
    if (r == Py_NotImplemented) {
        PyErr_SetString(PyExc_RuntimeError, "mask_json: a value to drop under default actions");
        return -1;
    }
    const char *u;
    Py_ssize_t k;
    if (PyBytes_Check(r)) {
        u = PyBytes_AS_STRING(r);
        k = PyBytes_GET_SIZE(r);
    } else if (PyUnicode_Check(r)) {
        u = PyUnicode_AsUTF8AndSize(r, &k);
        if (u == NULL)
            return -1;
    } else {
        PyErr_SetString(PyExc_TypeError, "mask_json: a callback answered neither text nor None");
        return -1;
    }
    w->changed = 1;
    return jw_put(w, u, k);
}

static PyObject *jw_key_obj(jwalk *w, Py_ssize_t ka, Py_ssize_t kb) {
    if (ka < 0)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8((const char *)w->s + ka, kb - ka, NULL);
}

/* ask Python for the value s[a:b] (a whole JSON value): JsonMasker._json_sub */
static int jw_sub(jwalk *w, Py_ssize_t a, Py_ssize_t b, Py_ssize_t ka, Py_ssize_t kb, int secret,
                  int *answered) {
    if (w->strict)
        return jw_retry(w);
    PyObject *raw = PyBytes_FromStringAndSize((const char *)w->s + a, b - a);
    PyObject *key = raw == NULL ? NULL : jw_key_obj(w, ka, kb);
    if (key == NULL) {
        Py_XDECREF(raw);
        return -1;
    }
    PyObject *args[3] = {raw, key, secret ? Py_True : Py_False};
    PyObject *r = PyObject_Vectorcall(w->cx[CX_SUB], args, 3, NULL);
    Py_DECREF(raw);
    Py_DECREF(key);
    if (r == NULL)
        return -1;
    *answered = r != Py_None;
    int rc = r == Py_None ? 0 : jw_json_answer(w, r, a, b, 1);
    Py_DECREF(r);
    return rc;
}


/* ValueMasker.named(value, kind, name, loc) under the default actions, for the values it
 * can do alone (ASCII, no scheme, no JWT or redaction marker, and no detector but an
 * e-mail matching all of it): a new reference to the result (value itself when unchanged)
 * with *rec = 1 (already masked) or 0 (masked now), *rec = -1 when nothing was recorded
 * (the empty value); NotImplemented (nothing recorded) for Python to do; NULL on error. */
static PyObject *named_core(const leaf_cfg *leaf, KeyedObject *keyed, PyObject *cache,
                            PyObject *value, int *rec) {
    *rec = -1;
    if (!PyUnicode_IS_ASCII(value))
        Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *v = PyUnicode_DATA(value);
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    if (n == 0) {
        Py_INCREF(value);
        return value;
    }
    PyObject *cached = PyDict_GetItemWithError(cache, value); /* borrowed */
    if (cached == NULL && PyErr_Occurred())
        return NULL;
    if (cached == Py_True) {
        *rec = 1;
        Py_INCREF(value);
        return value;
    }
    if (cached != NULL && PyUnicode_Check(cached)) {
        *rec = 0;
        Py_INCREF(cached);
        return cached;
    }
    if ((n >= 10 && memcmp(v, "[redacted:", 10) == 0) || (n >= 3 && memcmp(v, "eyJ", 3) == 0))
        Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *sp = memchr(v, ' ', (size_t)n);
    if (sp != NULL && sp + 1 < v + n) { /* "Bearer x": the scheme is kept (Python) */
        Py_ssize_t sl = sp - v;
        if (sl == 5 || sl == 6) {
            char low[6];
            for (Py_ssize_t i = 0; i < sl; i++)
                low[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
            if ((sl == 6 && memcmp(low, "bearer", 6) == 0) ||
                (sl == 5 && (memcmp(low, "basic", 5) == 0 || memcmp(low, "token", 5) == 0)))
                Py_RETURN_NOTIMPLEMENTED;
        }
    }
    int cls = leaf_class(leaf, v, n, 1);
    if (cls != LEAF_CLEAN && cls != LEAF_EMAIL && cls != LEAF_CARD)
        Py_RETURN_NOTIMPLEMENTED;
    char card_small[64];
    if (cls == LEAF_CARD && (n > (Py_ssize_t)sizeof card_small || jm_card(keyed, v, n, card_small) < 0))
        Py_RETURN_NOTIMPLEMENTED;
    int masked = jm_is_pseudo(v, n);
    if (masked == 0 && cls == LEAF_EMAIL)
        masked = jm_email_is_pseudo(v, n);
    if (masked == 0 && cls == LEAF_CARD)
        masked = jm_card_is_pseudo(v, n);
    if (masked < 0)
        return NULL;
    if (PyDict_GET_SIZE(cache) >= NAMED_MAX)
        PyDict_Clear(cache);
    if (masked) {
        if (PyDict_SetItem(cache, value, Py_True) < 0)
            return NULL;
        *rec = 1;
        Py_INCREF(value);
        return value;
    }
    PyObject *out;
    if (cls == LEAF_EMAIL) {
        char buf[40];
        Py_ssize_t k = jm_email(keyed, v, n, buf);
        if (k < 0)
            return NULL;
        out = PyUnicode_DecodeASCII(buf, k, NULL);
    } else if (cls == LEAF_CARD) {
        out = PyUnicode_DecodeASCII(card_small, n, NULL);
    } else {
        PyObject *args[1] = {value};
        out = Keyed_fp(keyed, args, 1);
    }
    if (out == NULL)
        return NULL;
    if (PyDict_SetItem(cache, value, out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    *rec = 0;
    return out;
}

/* a string under a secret name: ValueMasker.named(value, "field", key) */
static int jw_named(jwalk *w, Py_ssize_t a, Py_ssize_t b, Py_ssize_t ka, Py_ssize_t kb) {
    Py_ssize_t n = b - a;
    if (n == 0)
        return jw_put(w, "\"\"", 2);
    PyObject *value = PyUnicode_DecodeUTF8((const char *)w->s + a, n, NULL);
    if (value == NULL)
        return -1;
    int rec, rc = -1;
    PyObject *r = named_core(w->leaf, w->keyed, w->cx[CX_NAMED], value, &rec);
    if (r == Py_NotImplemented) {
        Py_DECREF(r);
        if (w->strict) {
            jw_retry(w);
            goto done;
        }
        PyObject *key = jw_key_obj(w, ka, kb);
        if (key == NULL)
            goto done;
        PyObject *args[2] = {value, key};
        r = PyObject_Vectorcall(w->cx[CX_NAMEDFN], args, 2, NULL);
        Py_DECREF(key);
        if (r != NULL && !PyUnicode_Check(r)) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_RuntimeError, "mask_json: a value to drop under default actions");
            goto done;
        }
    } else if (rec >= 0) {
        w->counts[rec ? N_FIELD_MASKED : N_FIELD]++;
    }
    if (r == NULL)
        goto done;
    rc = jw_replace(w, a, b, r);
    Py_DECREF(r);
done:
    Py_DECREF(value);
    return rc;
}

/* a whole e-mail address under no secret name: ValueMasker._detected("email", value) */
static int jw_email(jwalk *w, Py_ssize_t a, Py_ssize_t b) {
    const unsigned char *v = w->s + a;
    Py_ssize_t n = b - a;
    int masked = jm_is_redacted(v, n);
    if (!masked)
        masked = jm_email_is_pseudo(v, n);
    if (masked == 0)
        masked = jm_is_pseudo(v, n);
    if (masked < 0)
        return -1;
    if (masked) {
        w->counts[N_EMAIL_MASKED]++;
        return jw_put(w, v - 1, n + 2);
    }
    w->counts[N_EMAIL]++;
    char buf[40];
    Py_ssize_t k = jm_email(w->keyed, v, n, buf);
    if (k < 0)
        return -1;
    if (k == n && memcmp(buf, v, (size_t)n) == 0)
        return jw_put(w, v - 1, n + 2);
    w->changed = 1;
    if (jw_grow(w, k + 2) < 0)
        return -1;
    w->o[w->on++] = '"';
    memcpy(w->o + w->on, buf, (size_t)k);
    w->on += k;
    w->o[w->on++] = '"';
    return 0;
}

/* a whole detector match that Python pseudonymizes: JsonMasker._json_detected(rule, value) */
static int jw_detected(jwalk *w, const char *rule, Py_ssize_t a, Py_ssize_t b) {
    if (w->strict)
        return jw_retry(w);
    PyObject *value = PyUnicode_DecodeUTF8((const char *)w->s + a, b - a, NULL);
    PyObject *r_rule = value == NULL ? NULL : PyUnicode_FromString(rule);
    if (r_rule == NULL) {
        Py_XDECREF(value);
        return -1;
    }
    PyObject *args[2] = {r_rule, value};
    PyObject *r = PyObject_Vectorcall(w->cx[CX_DETFN], args, 2, NULL);
    Py_DECREF(r_rule);
    int rc = -1;
    if (r != NULL) {
        if (r == Py_None)
            rc = jw_put(w, w->s + a - 1, b - a + 2);
        else if (PyUnicode_Check(r))
            rc = jw_replace(w, a, b, r);
        else
            PyErr_SetString(PyExc_TypeError, "mask_json: _json_detected answered neither");
        Py_DECREF(r);
    }
    Py_DECREF(value);
    return rc;
}

/* a whole card number under no secret name (ASCII, at most 64 bytes):
 * ValueMasker._detected("card", value); Python when it is no 13-32 digit text */
static int jw_card(jwalk *w, Py_ssize_t a, Py_ssize_t b) {
    const unsigned char *v = w->s + a;
    Py_ssize_t n = b - a;
    char buf[64];
    if (jm_card(w->keyed, v, n, buf) < 0)
        return jw_detected(w, "card", a, b);
    int masked = jm_card_is_pseudo(v, n) || jm_is_redacted(v, n);
    if (!masked)
        masked = jm_is_pseudo(v, n);
    if (masked < 0)
        return -1;
    if (masked) {
        w->counts[N_CARD_MASKED]++;
        return jw_put(w, v - 1, n + 2);
    }
    w->counts[N_CARD]++;
    if (memcmp(buf, v, (size_t)n) == 0)
        return jw_put(w, v - 1, n + 2);
    w->changed = 1;
    if (jw_grow(w, n + 2) < 0)
        return -1;
    w->o[w->on++] = '"';
    memcpy(w->o + w->on, buf, (size_t)n);
    w->on += n;
    w->o[w->on++] = '"';
    return 0;
}

static Py_ssize_t jw_value(jwalk *w, Py_ssize_t p, int secret, Py_ssize_t ka, Py_ssize_t kb);

/* the key s[a:b] is a secret field name (FieldMatcher.matches, remembered per key) */
/* ctx is JsonMasker.count_into's (else a TypeError naming fn) */
static int cx_valid(PyObject *const *cx, const char *fn) {
    if (PyObject_TypeCheck(cx[CX_LEAF], &LeafConfigType) &&
        PyObject_TypeCheck(cx[CX_KEYED], &KeyedType) &&
        PyObject_TypeCheck(cx[CX_KEYS], &JsonKeysType) && PyDict_Check(cx[CX_NAMED]) &&
        PyDict_Check(cx[CX_FINDINGS]) && PyDict_Check(cx[CX_ALREADY]))
        return 1;
    PyErr_Format(PyExc_TypeError, "%s: ctx is not JsonMasker.count_into's", fn);
    return 0;
}

/* counter[key] += k (a Counter: a missing key counts 0) */
static int cx_count(PyObject *counter, PyObject *key, long k) {
    PyObject *old = PyDict_GetItemWithError(counter, key);
    long base = 0;
    if (old != NULL) {
        base = PyLong_AsLong(old);
        if (base == -1 && PyErr_Occurred())
            return -1;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *v = PyLong_FromLong(base + k);
    int rc = v == NULL ? -1 : PyDict_SetItem(counter, key, v);
    Py_XDECREF(v);
    return rc;
}

/* FieldMatcher.matches(name) for name s[0:n] (UTF-8), remembered in ctx's key table */
static int cx_is_field(PyObject *const *cx, const unsigned char *k, Py_ssize_t n) {
    JsonKeysObject *keys = (JsonKeysObject *)cx[CX_KEYS];
    uint64_t h = jk_hash(k, n);
    int f = n <= 255 ? jk_get(keys, k, n, h) : -1;
    if (f >= 0)
        return f;
    PyObject *key = PyUnicode_DecodeUTF8((const char *)k, n, NULL);
    if (key == NULL)
        return -1;
    PyObject *r = PyObject_CallOneArg(cx[CX_MATCHES], key);
    Py_DECREF(key);
    if (r == NULL)
        return -1;
    f = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (f < 0)
        return -1;
    jk_put(keys, k, n, h, f);
    return f;
}

static Py_ssize_t jw_container(jwalk *w, Py_ssize_t p, int secret, Py_ssize_t ka, Py_ssize_t kb) {
    const unsigned char *s = w->s;
    Py_ssize_t n = w->n;
    int obj = s[p] == '{';
    unsigned char close = obj ? '}' : ']';
    Py_ssize_t keys_small[2 * 32];
    Py_ssize_t *keys = keys_small, nkeys = 0, cap = 32, result = -1;
    if (w->strict && ++w->depth > JM_MAX_DEPTH)
        return jw_retry(w);
    if (jw_byte(w, (char)s[p]) < 0)
        return -1;
    p = jm_ws(s, n, p + 1);
    if (p >= n) {
        jw_retry(w);
        goto done;
    }
    if (s[p] == close) {
        result = jw_byte(w, (char)close) < 0 ? -1 : p + 1;
        goto done;
    }
    for (;;) {
        int sec = secret;
        if (obj) {
            Py_ssize_t a = p + 1, b;
            if (w->strict) { /* the check's part: a string key, not seen before, then ':' */
                if (s[p] != '"') {
                    jw_retry(w);
                    goto done;
                }
                b = jc_string(w->chk, p) - 1;
                if (b < 0) {
                    if (w->chk->fail > 0)
                        jw_retry(w);
                    goto done;
                }
                for (Py_ssize_t i = 0; i < nkeys; i++) {
                    if (keys[2 * i + 1] == b - a && memcmp(s + keys[2 * i], s + a, (size_t)(b - a)) == 0) {
                        jw_retry(w);
                        goto done;
                    }
                }
                if (nkeys == cap) {
                    if (cap >= JM_MAX_KEYS) {
                        jw_retry(w);
                        goto done;
                    }
                    Py_ssize_t *more = PyMem_Malloc(sizeof(Py_ssize_t) * 4 * (size_t)cap);
                    if (more == NULL) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    memcpy(more, keys, sizeof(Py_ssize_t) * 2 * (size_t)nkeys);
                    if (keys != keys_small)
                        PyMem_Free(keys);
                    keys = more;
                    cap *= 2;
                }
                keys[2 * nkeys] = a;
                keys[2 * nkeys + 1] = b - a;
                nkeys++;
            } else {
                b = (const unsigned char *)memchr(s + a, '"', (size_t)(n - a)) - s;
            }
            if (jw_put(w, s + p, b + 1 - p) < 0 || jw_byte(w, ':') < 0)
                goto done;
            ka = a;
            kb = b;
            if (!sec) {
                sec = cx_is_field(w->cx, s + a, b - a);
                if (sec < 0)
                    goto done;
            }
            p = jm_ws(s, n, b + 1);
            if (p >= n || s[p] != ':') {
                jw_retry(w);
                goto done;
            }
            p = jm_ws(s, n, p + 1);
        }
        p = jw_value(w, p, sec, ka, kb);
        if (p < 0)
            goto done;
        p = jm_ws(s, n, p);
        if (p < n && s[p] == ',') {
            if (jw_byte(w, ',') < 0)
                goto done;
            p = jm_ws(s, n, p + 1);
            continue;
        }
        if (p >= n || s[p] != close) {
            jw_retry(w);
            goto done;
        }
        result = jw_byte(w, (char)close) < 0 ? -1 : p + 1;
        goto done;
    }
done:
    if (keys != keys_small)
        PyMem_Free(keys);
    if (w->strict)
        w->depth--;
    return result;
}

static Py_ssize_t jw_number_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t p) {
    while (p < n && ((s[p] >= '0' && s[p] <= '9') || s[p] == '-' || s[p] == '+' || s[p] == '.' ||
                     s[p] == 'e' || s[p] == 'E'))
        p++;
    return p;
}

/* a number as orjson writes it (the check asked float_text for the ones written otherwise) */
static int jw_number_text(jwalk *w, Py_ssize_t a, Py_ssize_t b) {
    if (w->numfix != NULL && w->numfix_i < PyList_GET_SIZE(w->numfix)) {
        Py_ssize_t off = PyLong_AsSsize_t(PyList_GET_ITEM(w->numfix, w->numfix_i));
        if (off == a) {
            PyObject *fixed = PyList_GET_ITEM(w->numfix, w->numfix_i + 1);
            w->numfix_i += 2;
            return jw_put(w, PyBytes_AS_STRING(fixed), PyBytes_GET_SIZE(fixed));
        }
    }
    return jw_put(w, w->s + a, b - a);
}

static Py_ssize_t jw_value(jwalk *w, Py_ssize_t p, int secret, Py_ssize_t ka, Py_ssize_t kb) {
    const unsigned char *s = w->s;
    Py_ssize_t n = w->n;
    if (p >= n)
        return jw_retry(w);
    switch (s[p]) {
    case '{':
    case '[':
        return jw_container(w, p, secret, ka, kb);
    case '"': {
        Py_ssize_t a = p + 1, b;
        if (w->strict) {
            b = jc_string(w->chk, p) - 1;
            if (b < 0)
                return w->chk->fail > 0 ? jw_retry(w) : -1;
        } else {
            b = (const unsigned char *)memchr(s + a, '"', (size_t)(n - a)) - s;
        }
        int rc;
        if (secret) {
            rc = jw_named(w, a, b, ka, kb);
        } else {
            int cls = leaf_class(w->leaf, s + a, b - a, 0);
            if (cls == LEAF_CLEAN) {
                rc = jw_put(w, s + p, b + 1 - p);
            } else if (cls == LEAF_EMAIL && jw_ascii(s + a, b - a)) {
                rc = jw_email(w, a, b);
            } else if (cls == LEAF_CARD && b - a <= 64 && jw_ascii(s + a, b - a)) {
                rc = jw_card(w, a, b);
            } else if (cls == LEAF_CARD) {
                rc = jw_detected(w, "card", a, b);
            } else {
                int answered = 0;
                rc = jw_sub(w, p, b + 1, ka, kb, 0, &answered);
                if (rc == 0 && !answered)
                    rc = jw_put(w, s + p, b + 1 - p);
            }
        }
        return rc < 0 ? -1 : b + 1;
    }
    case 't':
        if (w->strict && (p + 4 > n || memcmp(s + p, "true", 4) != 0))
            return jw_retry(w);
        return jw_put(w, "true", 4) < 0 ? -1 : p + 4;
    case 'f':
        if (w->strict && (p + 5 > n || memcmp(s + p, "false", 5) != 0))
            return jw_retry(w);
        return jw_put(w, "false", 5) < 0 ? -1 : p + 5;
    case 'n':
        if (w->strict && (p + 4 > n || memcmp(s + p, "null", 4) != 0))
            return jw_retry(w);
        return jw_put(w, "null", 4) < 0 ? -1 : p + 4;
    default: {
        Py_ssize_t b;
        if (w->strict) { /* the check's part: the grammar, and orjson's form when it differs */
            b = jc_number(w->chk, p);
            if (b < 0)
                return w->chk->fail > 0 ? jw_retry(w) : -1;
            w->numfix = w->chk->numfix;
        } else {
            b = jw_number_end(s, n, p);
        }
        int plain_int = 1;
        for (Py_ssize_t i = p; i < b; i++)
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
                plain_int = 0;
        /* under a secret name, or an integer that may be a card number (13-19 characters) */
        if (secret || (plain_int && b - p >= 13 && b - p <= 19)) {
            int answered = 0;
            if (jw_sub(w, p, b, ka, kb, secret, &answered) < 0)
                return -1;
            if (answered) {
                /* the check may have a canonical form for it: skip that entry */
                if (w->numfix != NULL && w->numfix_i < PyList_GET_SIZE(w->numfix) &&
                    PyLong_AsSsize_t(PyList_GET_ITEM(w->numfix, w->numfix_i)) == p)
                    w->numfix_i += 2;
                return b;
            }
        }
        return jw_number_text(w, p, b) < 0 ? -1 : b;
    }
    }
}

static int jw_count(PyObject *counter, const char *rule, long k) {
    if (k == 0)
        return 0;
    PyObject *key = PyUnicode_InternFromString(rule);
    if (key == NULL)
        return -1;
    int rc = cx_count(counter, key, k);
    Py_DECREF(key);
    return rc;
}

/* mask_named(value, kind, ctx): ValueMasker.named(value, kind, ...) for the values
 * named_core does (counted into ctx's Counters under kind), else NotImplemented */
static PyObject *core_mask_named(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) ||
        !PyTuple_Check(args[2]) || PyTuple_GET_SIZE(args[2]) != CX_N) {
        PyErr_SetString(PyExc_TypeError, "mask_named(value: str, kind: str, ctx: tuple)");
        return NULL;
    }
    PyObject *const *cx = &PyTuple_GET_ITEM(args[2], 0);
    if (!cx_valid(cx, "mask_named"))
        return NULL;
    int rec;
    PyObject *r = named_core(&((LeafConfigObject *)cx[CX_LEAF])->cfg, (KeyedObject *)cx[CX_KEYED],
                             cx[CX_NAMED], args[0], &rec);
    if (r == NULL || r == Py_NotImplemented || rec < 0)
        return r;
    if (cx_count(rec ? cx[CX_ALREADY] : cx[CX_FINDINGS], args[1], 1) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *core_mask_json(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[1]) ||
        PyTuple_GET_SIZE(args[1]) != CX_N) {
        PyErr_SetString(PyExc_TypeError, "mask_json(body: bytes, ctx: tuple)");
        return NULL;
    }
    PyObject *const *cx = &PyTuple_GET_ITEM(args[1], 0);
    if (!cx_valid(cx, "mask_json"))
        return NULL;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (memchr(s, '\\', (size_t)n) != NULL)
        Py_RETURN_NOTIMPLEMENTED;
    /* a private key block can run over quotes into later strings in the raw-text pass of the
     * Python walk, which then sees those strings otherwise than one at a time: its bodies
     * stay there */
    if ((((LeafConfigObject *)cx[CX_LEAF])->cfg.detectors & 1u) && jm_find(s, n, "PRIVATE KEY"))
        Py_RETURN_NOTIMPLEMENTED;
    /* first the optimistic single pass (it checks as it walks and calls no Python): most
     * bodies end there; anything it cannot do starts over with the check, then the walk */
    jcheck c = {s, n, cx[CX_FLOAT], NULL, 0};
    jwalk w = {s,
               n,
               cx,
               &((LeafConfigObject *)cx[CX_LEAF])->cfg,
               (KeyedObject *)cx[CX_KEYED],
               (JsonKeysObject *)cx[CX_KEYS],
               NULL,
               0,
               NULL,
               0,
               0,
               0,
               {0},
               1,
               0,
               0,
               &c};
    PyObject *result = NULL;
    w.ocap = n + 64;
    w.o = PyMem_Malloc((size_t)w.ocap);
    if (w.o == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t p = jw_value(&w, jm_ws(s, n, 0), 0, -1, -1);
    if (p >= 0 && jm_ws(s, n, p) != n)
        w.retry = 1;
    if (p < 0 && !w.retry)
        goto done; /* a Python error */
    if (!w.retry && c.wide_int && c.float_repr) {
        result = Py_NotImplemented; /* the Python walk may write it with json.dumps */
        Py_INCREF(result);
        goto done;
    }
    if (w.retry) {
        /* pass 1: the check (nothing recorded; only caches filled) */
        Py_CLEAR(c.numfix);
        c.fail = c.wide_int = c.float_repr = 0;
        p = jm_ws(s, n, 0);
        p = jc_value(&c, p, 0);
        if (p >= 0 && jm_ws(s, n, p) != n)
            c.fail = 1;
        if (c.wide_int && c.float_repr && !c.fail)
            c.fail = 1; /* the Python walk may write it with json.dumps: see jcheck */
        if (c.fail) {
            if (c.fail > 0) {
                result = Py_NotImplemented;
                Py_INCREF(result);
            }
            goto done;
        }
        /* pass 2: the walk */
        w.strict = 0;
        w.retry = 0;
        w.depth = 0;
        w.numfix = c.numfix;
        w.numfix_i = 0;
        w.on = 0;
        w.changed = 0;
        memset(w.counts, 0, sizeof w.counts);
        if (jw_value(&w, jm_ws(s, n, 0), 0, -1, -1) < 0)
            goto done;
    }
    if (jw_count(cx[CX_FINDINGS], "email", w.counts[N_EMAIL]) < 0 ||
        jw_count(cx[CX_ALREADY], "email", w.counts[N_EMAIL_MASKED]) < 0 ||
        jw_count(cx[CX_FINDINGS], "field", w.counts[N_FIELD]) < 0 ||
        jw_count(cx[CX_ALREADY], "field", w.counts[N_FIELD_MASKED]) < 0 ||
        jw_count(cx[CX_FINDINGS], "card", w.counts[N_CARD]) < 0 ||
        jw_count(cx[CX_ALREADY], "card", w.counts[N_CARD_MASKED]) < 0)
        goto done;
    if (w.changed) {
        result = PyBytes_FromStringAndSize(w.o, w.on);
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
done:
    PyMem_Free(w.o);
    Py_XDECREF(c.numfix);
    return result;
}

/* == mask_head: the head of a message (Masker.headers and Masker.target) =================
 *
 * mask_head(target, headers, hctx) does what Masker.message does to a head for the common
 * case (every value ASCII; no %-escape or '+' in the target, no user:password@ in it; no
 * folded Set-Cookie; every value that would be scanned as text is one the leaf classifier
 * calls clean; no query value that looks like JSON): values masked by name go through
 * named_core (or ValueMasker.named, via hctx's named_fn, when it cannot), counted like the
 * stage's recorder. A first pass only checks (nothing is counted), so anything else answers
 * NotImplemented and Masker.message does it all in Python.
 * Returns NotImplemented, or (new target or None, new headers or None, the _head_facts of
 * the headers it leaves: (encodings, content type, chunked?)).
 */

enum {
    HX_JSON,
    HX_HEADERS,
    HX_KEEP,
    HX_COOKIES,
    HX_QUERY,
    HX_SKIP,
    HX_AUTH,
    HX_URL,
    HX_NAMEDFN,
    HX_HNAMES, /* JsonKeys: header name -> its class (HC_*) */
    HX_QNAMES, /* JsonKeys: query name -> 0 plain, 1 a query rule, 2 a secret field name */
    HX_N
};

/* what Masker.headers does with a header field, by its name */
enum { HC_KEEP = 1, HC_COOKIE, HC_COOKIE_EVERY, HC_SETC, HC_SETC_EVERY, HC_HEADER, HC_FIELD,
       HC_URL, HC_SCAN };

typedef struct {
    PyObject *const *cx;  /* the JSON masker's ctx */
    PyObject *const *hx;  /* mask_head's own */
    const leaf_cfg *leaf;
    int dry;              /* 1: only check; 0: mask */
} hwalk;

#define H_NO 1 /* not for the compiled path */

static inline int h_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* text(value) finds nothing (the leaf classifier is sure) */
static inline int h_clean(hwalk *h, const char *s, Py_ssize_t n) {
    return leaf_class(h->leaf, (const unsigned char *)s, n, 0) == LEAF_CLEAN;
}

/* lower-case ASCII s[0:n] in the frozenset at hx[slot]? (-1: error) */
static int h_in(hwalk *h, int slot, const char *s, Py_ssize_t n) {
    char small[128] = {0};
    char *low = n <= 128 ? small : PyMem_Malloc((size_t)n);
    if (low == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    PyObject *k = PyUnicode_DecodeASCII(low, n, NULL);
    if (low != small)
        PyMem_Free(low);
    if (k == NULL)
        return -1;
    int r = PySet_Contains(h->hx[slot], k);
    Py_DECREF(k);
    return r;
}

/* the class of header name nm (HC_*; remembered per name), -1 on error */
static int h_class(hwalk *h, const char *nm, Py_ssize_t nn) {
    JsonKeysObject *t = (JsonKeysObject *)h->hx[HX_HNAMES];
    uint64_t hh = jk_hash((const unsigned char *)nm, nn);
    int c = nn <= 255 ? jk_get(t, (const unsigned char *)nm, nn, hh) : -1;
    if (c > 0)
        return c;
    int keep = h_in(h, HX_KEEP, nm, nn);
    if (keep == 0)
        keep = h_in(h, HX_SKIP, nm, nn);
    int in_headers = keep ? 0 : h_in(h, HX_HEADERS, nm, nn);
    if (keep < 0 || in_headers < 0)
        return -1;
    int some_cookies = PySet_GET_SIZE(h->hx[HX_COOKIES]) > 0;
    int is_cookie = nn == 6 && PyOS_strnicmp(nm, "cookie", 6) == 0;
    int is_set = nn == 10 && PyOS_strnicmp(nm, "set-cookie", 10) == 0;
    if (keep) {
        c = HC_KEEP;
    } else if ((is_cookie || is_set) && (in_headers || some_cookies)) {
        c = is_set ? (in_headers ? HC_SETC_EVERY : HC_SETC)
                   : (in_headers ? HC_COOKIE_EVERY : HC_COOKIE);
    } else {
        int field = in_headers ? 1 : cx_is_field(h->cx, (const unsigned char *)nm, nn);
        if (field < 0)
            return -1;
        if (field) {
            int auth = in_headers ? 1 : h_in(h, HX_AUTH, nm, nn);
            if (auth < 0)
                return -1;
            c = auth ? HC_HEADER : HC_FIELD;
        } else {
            int url = h_in(h, HX_URL, nm, nn);
            if (url < 0)
                return -1;
            c = url ? HC_URL : HC_SCAN;
        }
    }
    if (nn <= 255)
        jk_put(t, (const unsigned char *)nm, nn, hh, c);
    return c;
}

/* a query or form name: 0 plain, 1 a query rule ("query"), 2 a secret field name ("field") */
static int h_qclass(hwalk *h, const char *nm, Py_ssize_t nn) {
    JsonKeysObject *t = (JsonKeysObject *)h->hx[HX_QNAMES];
    uint64_t hh = jk_hash((const unsigned char *)nm, nn);
    int c = nn <= 255 ? jk_get(t, (const unsigned char *)nm, nn, hh) : -1;
    if (c >= 0)
        return c;
    int q = h_in(h, HX_QUERY, nm, nn);
    if (q < 0)
        return -1;
    if (q) {
        c = 1;
    } else {
        int f = cx_is_field(h->cx, (const unsigned char *)nm, nn);
        if (f < 0)
            return -1;
        c = f ? 2 : 0;
    }
    if (nn <= 255)
        jk_put(t, (const unsigned char *)nm, nn, hh, c);
    return c;
}

/* ValueMasker.named(value, kind, name): a new str (dry: NULL with *none = 0) */
static PyObject *h_named(hwalk *h, const char *s, Py_ssize_t n, const char *kind, const char *name,
                         Py_ssize_t nlen) {
    PyObject *value = PyUnicode_DecodeASCII(s, n, NULL);
    if (value == NULL)
        return NULL;
    int rec;
    PyObject *r = named_core(h->leaf, (KeyedObject *)h->cx[CX_KEYED], h->cx[CX_NAMED], value, &rec);
    if (r == Py_NotImplemented) {
        Py_DECREF(r);
        PyObject *k = PyUnicode_FromString(kind);
        PyObject *nm = k == NULL ? NULL : PyUnicode_DecodeASCII(name, nlen, NULL);
        if (nm == NULL) {
            Py_XDECREF(k);
            Py_DECREF(value);
            return NULL;
        }
        PyObject *args[3] = {value, k, nm};
        r = PyObject_Vectorcall(h->hx[HX_NAMEDFN], args, 3, NULL);
        Py_DECREF(k);
        Py_DECREF(nm);
        if (r != NULL && !PyUnicode_Check(r)) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_RuntimeError, "mask_head: a value to drop under default actions");
            r = NULL;
        }
    } else if (r != NULL && rec >= 0) {
        if (jw_count(h->cx[rec ? CX_ALREADY : CX_FINDINGS], kind, 1) < 0) {
            Py_DECREF(r);
            r = NULL;
        }
    }
    Py_DECREF(value);
    return r;
}

/* a growing text */
typedef struct {
    char *b;
    Py_ssize_t n, cap;
} hbuf;

static int hb_put(hbuf *o, const char *s, Py_ssize_t k) {
    if (o->n + k > o->cap) {
        Py_ssize_t cap = (o->cap + k) * 2 + 64;
        char *b = PyMem_Realloc(o->b, (size_t)cap);
        if (b == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        o->b = b;
        o->cap = cap;
    }
    memcpy(o->b + o->n, s, (size_t)k);
    o->n += k;
    return 0;
}

static int hb_str(hbuf *o, PyObject *str) {
    Py_ssize_t k;
    const char *u = PyUnicode_AsUTF8AndSize(str, &k);
    return u == NULL ? -1 : hb_put(o, u, k);
}

/* _quote_value(str): quote_plus of its UTF-8 with the safe characters @ : , / * ! $ ' ( ) ~ */
static int hb_quote(hbuf *o, PyObject *str) {
    Py_ssize_t n;
    const unsigned char *s = (const unsigned char *)PyUnicode_AsUTF8AndSize(str, &n);
    if (s == NULL)
        return -1;
    static const char hex[] = "0123456789ABCDEF";
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        char t[3];
        Py_ssize_t k = 1;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != 0 && strchr("_.-~@:,/*!$'()", c) != NULL)) {
            t[0] = (char)c;
        } else if (c == ' ') {
            t[0] = '+';
        } else {
            t[0] = '%';
            t[1] = hex[c >> 4];
            t[2] = hex[c & 15];
            k = 3;
        }
        if (hb_put(o, t, k) < 0)
            return -1;
    }
    return 0;
}

/* map_urlencoded(text, pair(kind="query")) into o: 0, H_NO, -1 */
static int h_urlencoded(hwalk *h, const char *s, Py_ssize_t n, hbuf *o) {
    Py_ssize_t i = 0;
    int first = 1;
    for (;;) {
        const char *amp = memchr(s + i, '&', (size_t)(n - i));
        Py_ssize_t e = amp == NULL ? n : amp - s;
        if (!first && !h->dry && hb_put(o, "&", 1) < 0)
            return -1;
        first = 0;
        const char *p = s + i;
        Py_ssize_t pl = e - i;
        if (pl > 0) {
            const char *eq = memchr(p, '=', (size_t)pl);
            Py_ssize_t kl = eq == NULL ? pl : eq - p;
            const char *v = eq == NULL ? p + pl : eq + 1;
            Py_ssize_t vl = eq == NULL ? 0 : pl - kl - 1;
            int named = h_qclass(h, p, kl);
            if (named < 0)
                return -1;
            const char *kind = named == 1 ? "query" : "field";
            if (kl > 0 && !h_clean(h, p, kl)) /* the name's own text() */
                return H_NO;
            if (named) {
                if (h->dry) {
                    /* nothing to check: named_core or ValueMasker.named does any value */
                } else {
                    PyObject *r = h_named(h, v, vl, kind, p, kl);
                    if (r == NULL)
                        return -1;
                    Py_ssize_t rl;
                    const char *ru = PyUnicode_AsUTF8AndSize(r, &rl);
                    int rc;
                    if (ru == NULL) {
                        rc = -1;
                    } else if (rl == vl && memcmp(ru, v, (size_t)vl) == 0) {
                        rc = hb_put(o, p, pl);
                    } else {
                        rc = hb_put(o, p, kl) < 0 || hb_put(o, "=", 1) < 0 ? -1 : hb_quote(o, r);
                    }
                    Py_DECREF(r);
                    if (rc < 0)
                        return -1;
                }
            } else {
                Py_ssize_t j = 0;
                while (j < vl && h_space((unsigned char)v[j]))
                    j++;
                if (j < vl && (v[j] == '{' || v[j] == '[') && vl > 1)
                    return H_NO; /* may be JSON: pair() masks it as a document */
                if (!h_clean(h, v, vl))
                    return H_NO;
                if (!h->dry && hb_put(o, p, pl) < 0)
                    return -1;
            }
        }
        if (amp == NULL)
            return 0;
        i = e + 1;
    }
}

/* Masker.target(t): the new target into o: 0, H_NO, -1 */
static int h_target(hwalk *h, const char *t, Py_ssize_t n, hbuf *o) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (t[i] == '%' || t[i] == '+' || (unsigned char)t[i] >= 0x80)
            return H_NO;
    Py_ssize_t start = 0;
    const char *sch = NULL;
    for (Py_ssize_t i = 0; i + 3 <= n && i < 8; i++) { /* "://" in t[:10] */
        if (memcmp(t + i, "://", 3) == 0) {
            sch = t + i;
            break;
        }
    }
    if (sch != NULL) {
        Py_ssize_t a = sch - t + 3;
        const char *slash = memchr(t + a, '/', (size_t)(n - a));
        Py_ssize_t ae = slash == NULL ? n : slash - t;
        if (memchr(t + a, '@', (size_t)(ae - a)) != NULL)
            return H_NO; /* user:password@ */
        start = ae;
        if (!h->dry && hb_put(o, t, ae) < 0)
            return -1;
    }
    const char *hash = memchr(t + start, '#', (size_t)(n - start));
    Py_ssize_t pe = hash == NULL ? n : hash - t;
    const char *q = memchr(t + start, '?', (size_t)(pe - start));
    Py_ssize_t pathe = q == NULL ? pe : q - t;
    /* path segments: text() of each */
    for (Py_ssize_t i = start; i < pathe;) {
        const char *sl = memchr(t + i, '/', (size_t)(pathe - i));
        Py_ssize_t e = sl == NULL ? pathe : sl - t;
        if (e > i && !h_clean(h, t + i, e - i))
            return H_NO;
        i = e + 1;
    }
    if (!h->dry && hb_put(o, t + start, pathe - start) < 0)
        return -1;
    if (q != NULL) {
        if (!h->dry && hb_put(o, "?", 1) < 0)
            return -1;
        int rc = h_urlencoded(h, q + 1, pe - (q - t) - 1, o);
        if (rc)
            return rc;
    }
    if (hash != NULL) {
        if (!h->dry && hb_put(o, "#", 1) < 0)
            return -1;
        int rc = h_urlencoded(h, hash + 1, n - pe - 1, o);
        if (rc)
            return rc;
    }
    return 0;
}

/* Masker._cookie_list(value, header): 0, H_NO, -1 */
static int h_cookies(hwalk *h, const char *s, Py_ssize_t n, int set_cookie, int every, hbuf *o) {
    Py_ssize_t end = n, attrs = -1;
    if (set_cookie) {
        if (memchr(s, ',', (size_t)n) != NULL)
            return H_NO; /* maybe several cookies folded into one line */
        const char *semi = memchr(s, ';', (size_t)n);
        if (semi != NULL) {
            end = semi - s;
            attrs = end + 1;
            if (!h_clean(h, s + attrs, n - attrs))
                return H_NO;
        }
    }
    Py_ssize_t i = 0;
    int first = 1;
    for (;;) {
        const char *semi = set_cookie ? NULL : memchr(s + i, ';', (size_t)(end - i));
        Py_ssize_t e = semi == NULL ? end : semi - s;
        if (!first && !h->dry && hb_put(o, ";", 1) < 0)
            return -1;
        first = 0;
        const char *p = s + i;
        Py_ssize_t pl = e - i;
        const char *eq = memchr(p, '=', (size_t)pl);
        int secret = 0;
        Py_ssize_t nl = eq == NULL ? pl : eq - p, ns = 0, ne = nl;
        while (ns < ne && h_space((unsigned char)p[ns]))
            ns++;
        while (ne > ns && h_space((unsigned char)p[ne - 1]))
            ne--;
        if (eq != NULL) {
            secret = every;
            if (!secret) {
                secret = h_in(h, HX_COOKIES, p + ns, ne - ns);
                if (secret < 0)
                    return -1;
            }
        }
        if (!secret) {
            if (!h_clean(h, p, pl))
                return H_NO;
            if (!h->dry && hb_put(o, p, pl) < 0)
                return -1;
        } else {
            const char *v = eq + 1;
            Py_ssize_t vl = pl - nl - 1, a = 0, b = vl;
            while (a < vl && h_space((unsigned char)v[a]))
                a++;
            while (b > a && h_space((unsigned char)v[b - 1]))
                b--;
            int quoted = b - a >= 2 && v[a] == '"' && v[b - 1] == '"';
            if (!h->dry) {
                PyObject *r = quoted ? h_named(h, v + a + 1, b - a - 2, "cookie", p + ns, ne - ns)
                                     : h_named(h, v + a, b - a, "cookie", p + ns, ne - ns);
                if (r == NULL)
                    return -1;
                int rc = hb_put(o, p, nl + 1) < 0 || hb_put(o, v, a) < 0 ||
                                 (quoted && hb_put(o, "\"", 1) < 0) || hb_str(o, r) < 0 ||
                                 (quoted && hb_put(o, "\"", 1) < 0)
                             ? -1
                             : 0;
                Py_DECREF(r);
                if (rc < 0)
                    return -1;
            }
        }
        if (e >= end)
            break;
        i = e + 1;
    }
    if (attrs >= 0 && !h->dry && (hb_put(o, ";", 1) < 0 || hb_put(o, s + attrs, n - attrs) < 0))
        return -1;
    return 0;
}

/* one pass of mask_head over (target, headers): 0, H_NO, -1; when not dry, *new_target and
 * *new_headers are set (new references, or NULL when unchanged) */
static int h_pass(hwalk *h, PyObject *target, PyObject *headers, PyObject **new_target,
                  PyObject **new_headers) {
    hbuf o = {NULL, 0, 0};
    int rc = 0;
    PyObject *out = NULL;
    if (target != Py_None) {
        if (!PyUnicode_IS_ASCII(target))
            return H_NO;
        rc = h_target(h, PyUnicode_DATA(target), PyUnicode_GET_LENGTH(target), &o);
        if (rc)
            goto done;
        if (!h->dry && (o.n != PyUnicode_GET_LENGTH(target) ||
                        memcmp(o.b, PyUnicode_DATA(target), (size_t)o.n) != 0)) {
            *new_target = PyUnicode_DecodeASCII(o.b, o.n, NULL);
            if (*new_target == NULL) {
                rc = -1;
                goto done;
            }
        }
    }
    Py_ssize_t nh = PyList_GET_SIZE(headers);
    int any = 0;
    if (!h->dry && (out = PyList_New(nh)) == NULL) {
        rc = -1;
        goto done;
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            rc = H_NO;
            goto done;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_Check(name) || !PyUnicode_Check(value) || !PyUnicode_IS_ASCII(name) ||
            !PyUnicode_IS_ASCII(value)) {
            rc = H_NO;
            goto done;
        }
        const char *nm = PyUnicode_DATA(name), *vs = PyUnicode_DATA(value);
        Py_ssize_t nn = PyUnicode_GET_LENGTH(name), vn = PyUnicode_GET_LENGTH(value), a = 0,
                   b = vn;
        while (a < b && h_space((unsigned char)vs[a]))
            a++;
        while (b > a && h_space((unsigned char)vs[b - 1]))
            b--;
        const char *v = vs + a;
        Py_ssize_t vl = b - a;
        PyObject *nv = NULL; /* the new value (a new reference); NULL: v itself */
        o.n = 0;
        int cls = vl == 0 ? HC_KEEP : h_class(h, nm, nn);
        if (cls < 0) {
            rc = -1;
            goto done;
        }
        if (cls == HC_COOKIE || cls == HC_COOKIE_EVERY || cls == HC_SETC || cls == HC_SETC_EVERY) {
            /* the default actions: a secret cookie header is masked, never dropped */
            rc = h_cookies(h, v, vl, cls == HC_SETC || cls == HC_SETC_EVERY,
                           cls == HC_COOKIE_EVERY || cls == HC_SETC_EVERY, &o);
            if (rc)
                goto done;
            if (!h->dry)
                nv = PyUnicode_DecodeASCII(o.b, o.n, NULL);
        } else if (cls == HC_HEADER || cls == HC_FIELD) {
            if (!h->dry) {
                char low[64];
                Py_ssize_t ll = nn < 64 ? nn : 64;
                for (Py_ssize_t j = 0; j < ll; j++)
                    low[j] = (char)(nm[j] >= 'A' && nm[j] <= 'Z' ? nm[j] + 32 : nm[j]);
                nv = h_named(h, v, vl, cls == HC_HEADER ? "header" : "field", low, ll);
            }
        } else if (cls == HC_URL) {
            rc = h_target(h, v, vl, &o);
            if (rc)
                goto done;
            if (!h->dry)
                nv = PyUnicode_DecodeASCII(o.b, o.n, NULL);
        } else if (cls == HC_SCAN && !h_clean(h, v, vl)) {
            rc = H_NO;
            goto done;
        }
        if (PyErr_Occurred()) {
            rc = -1;
            goto done;
        }
        if (!h->dry && nv == NULL && vl == vn) { /* unchanged and nothing stripped: the same pair */
            Py_INCREF(item);
            PyList_SET_ITEM(out, kept++, item);
        } else if (!h->dry) {
            if (nv == NULL)
                nv = PyUnicode_DecodeASCII(v, vl, NULL);
            if (nv == NULL) {
                rc = -1;
                goto done;
            }
            Py_ssize_t nl;
            const char *nu = PyUnicode_AsUTF8AndSize(nv, &nl);
            if (nu == NULL) {
                Py_DECREF(nv);
                rc = -1;
                goto done;
            }
            if (nl != vl || memcmp(nu, v, (size_t)vl) != 0)
                any = 1;
            PyObject *pair = PyTuple_Pack(2, name, nv);
            Py_DECREF(nv);
            if (pair == NULL) {
                rc = -1;
                goto done;
            }
            PyList_SET_ITEM(out, kept++, pair);
        }
    }
    if (!h->dry && any) {
        *new_headers = out;
        out = NULL;
    }
done:
    Py_XDECREF(out);
    PyMem_Free(o.b);
    return rc;
}

/* the comma-separated tokens of v (str.split(",") then strip, empty ones left out) appended */
static int h_tokens(PyObject *list, const char *v, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i <= n) {
        const char *c = memchr(v + i, ',', (size_t)(n - i));
        Py_ssize_t e = c == NULL ? n : c - v, a = i, b = e;
        while (a < b && h_space((unsigned char)v[a]))
            a++;
        while (b > a && h_space((unsigned char)v[b - 1]))
            b--;
        if (b > a) {
            PyObject *t = PyUnicode_DecodeASCII(v + a, b - a, NULL);
            if (t == NULL || PyList_Append(list, t) < 0) {
                Py_XDECREF(t);
                return -1;
            }
            Py_DECREF(t);
        }
        i = e + 1;
    }
    return 0;
}

/* _mask_engine._head_facts(fields) of the ASCII fields mask_head returns: (encodings, the
 * content type or "", chunked?) */
static PyObject *h_facts(PyObject *fields) {
    PyObject *enc = PyList_New(0), *ctype = NULL;
    if (enc == NULL)
        return NULL;
    const char *te_last = NULL;
    Py_ssize_t te_len = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(fields); i++) {
        PyObject *item = PyList_GET_ITEM(fields, i);
        PyObject *k = PyTuple_GET_ITEM(item, 0), *v = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t kn = PyUnicode_GET_LENGTH(k), vn = PyUnicode_GET_LENGTH(v);
        const char *ks = PyUnicode_DATA(k), *vs = PyUnicode_DATA(v);
        if (kn == 16 && PyOS_strnicmp(ks, "content-encoding", 16) == 0) {
            if (h_tokens(enc, vs, vn) < 0)
                goto fail;
        } else if (kn == 12 && PyOS_strnicmp(ks, "content-type", 12) == 0) {
            if (ctype == NULL) {
                ctype = v;
                Py_INCREF(ctype);
            }
        } else if (kn == 17 && PyOS_strnicmp(ks, "transfer-encoding", 17) == 0) {
            Py_ssize_t i2 = 0; /* the last non-empty token wins */
            while (i2 <= vn) {
                const char *c = memchr(vs + i2, ',', (size_t)(vn - i2));
                Py_ssize_t e = c == NULL ? vn : c - vs, a = i2, b = e;
                while (a < b && h_space((unsigned char)vs[a]))
                    a++;
                while (b > a && h_space((unsigned char)vs[b - 1]))
                    b--;
                if (b > a) {
                    te_last = vs + a;
                    te_len = b - a;
                }
                i2 = e + 1;
            }
        }
    }
    int chunked = te_len == 7 && PyOS_strnicmp(te_last, "chunked", 7) == 0;
    if (ctype == NULL && (ctype = PyUnicode_New(0, 0)) == NULL)
        goto fail;
    PyObject *res = Py_BuildValue("(NOO)", enc, ctype, chunked ? Py_True : Py_False);
    Py_DECREF(ctype);
    return res;
fail:
    Py_DECREF(enc);
    Py_XDECREF(ctype);
    return NULL;
}

static PyObject *core_mask_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !(args[0] == Py_None || PyUnicode_Check(args[0])) ||
        !PyList_Check(args[1]) || !PyTuple_Check(args[2]) || PyTuple_GET_SIZE(args[2]) != HX_N ||
        !PyTuple_Check(PyTuple_GET_ITEM(args[2], HX_JSON)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(args[2], HX_JSON)) != CX_N) {
        PyErr_SetString(PyExc_TypeError, "mask_head(target: str | None, headers: list, hctx: tuple)");
        return NULL;
    }
    PyObject *const *hx = &PyTuple_GET_ITEM(args[2], 0);
    PyObject *const *cx = &PyTuple_GET_ITEM(hx[HX_JSON], 0);
    if (!cx_valid(cx, "mask_head"))
        return NULL;
    for (int i = HX_HEADERS; i <= HX_URL; i++) {
        if (!PyAnySet_Check(hx[i])) {
            PyErr_SetString(PyExc_TypeError, "mask_head: hctx's name sets are not sets");
            return NULL;
        }
    }
    if (!PyObject_TypeCheck(hx[HX_HNAMES], &JsonKeysType) ||
        !PyObject_TypeCheck(hx[HX_QNAMES], &JsonKeysType)) {
        PyErr_SetString(PyExc_TypeError, "mask_head: hctx's name tables are not JsonKeys");
        return NULL;
    }
    hwalk h = {cx, hx, &((LeafConfigObject *)cx[CX_LEAF])->cfg, 1};
    PyObject *nt = NULL, *nh = NULL;
    int rc = h_pass(&h, args[0], args[1], &nt, &nh);
    if (rc < 0)
        return NULL;
    if (rc == H_NO)
        Py_RETURN_NOTIMPLEMENTED;
    h.dry = 0;
    rc = h_pass(&h, args[0], args[1], &nt, &nh);
    if (rc != 0) {
        Py_XDECREF(nt);
        Py_XDECREF(nh);
        if (rc < 0)
            return NULL;
        PyErr_SetString(PyExc_RuntimeError, "mask_head: the second pass disagrees with the first");
        return NULL;
    }
    PyObject *facts = h_facts(nh ? nh : args[1]);
    PyObject *res = facts == NULL ? NULL : PyTuple_Pack(3, nt ? nt : Py_None, nh ? nh : Py_None, facts);
    Py_XDECREF(facts);
    Py_XDECREF(nt);
    Py_XDECREF(nh);
    return res;
}
