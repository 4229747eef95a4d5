/* The leaf classifier of the compiled JSON masker (included by _mask_core.c).
 *
 * leaf_class(cfg, s, n, whole) says, for the text s[0:n] of one JSON string (UTF-8 bytes,
 * no backslash, no quote, no control character), what TextScanner (stages/_detectors.py)
 * would find in it, with the scanner's detectors, field words and field patterns in cfg:
 *
 *   whole == 0 (like list(scanner.findings(S))):
 *     LEAF_CLEAN   no finding at all (no detector, no field pattern, no base64 run that
 *                  decodes to text);
 *     LEAF_EMAIL   exactly one finding: ("email", 0, len(S));
 *     LEAF_CARD    exactly one finding: ("card", 0, len(S));
 *   whole == 1 (like scanner.whole(S)):
 *     LEAF_CLEAN   whole(S) is None; LEAF_EMAIL: whole(S) == "email"; LEAF_CARD: "card";
 *   LEAF_UNKNOWN   anything else, or not sure: the caller asks Python.
 *
 * Conservative by design: any answer but LEAF_UNKNOWN must be exact (the tests compare it
 * with TextScanner on generated and real texts).
 *
 * How: no allocation, no Python call, a few linear passes over s. Each detector is either
 * decided exactly (e-mail: a port of email_spans; card: the regex's three alternatives, which
 * backtracking cannot shorten, then Luhn; IBAN without spaces: the regex then mod 97;
 * AWS access keys; base64 runs: decoded on the fly, strict UTF-8, printable, and a decoded
 * ASCII text classified again without base64) or only excluded through a necessary literal
 * condition (its regex's fixed prefix with its look-behind), any hit of which answers
 * LEAF_UNKNOWN. Field patterns: with the field names (LeafConfig's fourth argument), each
 * key=value name made of letters, digits, '-' and '_' is matched exactly up to its separator
 * and the first character of its value (a necessary condition of the regex); other names
 * and the name=/</ patterns answer LEAF_UNKNOWN whenever a field word and their literal
 * occur. Non-ASCII bytes are "other" characters for every ASCII regex; the two characters
 * whose str.lower() is ASCII (U+0130, U+212A) and a non-ASCII byte before an e-mail make
 * LEAF_UNKNOWN; only LEAF_CLEAN can be said of a non-ASCII text.
 */

enum { LEAF_CLEAN = 0, LEAF_EMAIL = 1, LEAF_CARD = 2, LEAF_UNKNOWN = 3 };

/* strict UTF-8 (no overlong form, no surrogate, nothing past U+10FFFF): for the lead byte b
 * (>= 0x80), the continuation bytes it needs and the range of the first one; 0 when b
 * starts no sequence. Later continuation bytes are 0x80-0xBF. (Also used by _mask_jsonc.h.) */
static inline int utf8_lead(unsigned char b, int *need, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        *need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        *need = 2;
        if (b == 0xE0)
            *lo = 0xA0;
        else if (b == 0xED)
            *hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        *need = 3;
        if (b == 0xF0)
            *lo = 0x90;
        else if (b == 0xF4)
            *hi = 0x8F;
    } else {
        return 0;
    }
    return 1;
}

/* bits of ALL_DETECTORS, in its order (LEAF_DETECTORS below) */
enum {
    D_PRIVATE_KEY = 1u << 0,
    D_JWT = 1u << 1,
    D_BEARER = 1u << 2,
    D_BASIC = 1u << 3,
    D_AWS_ACCESS = 1u << 4,
    D_AWS_SECRET = 1u << 5,
    D_GITHUB = 1u << 6,
    D_STRIPE = 1u << 7,
    D_SLACK = 1u << 8,
    D_IBAN = 1u << 9,
    D_CARD = 1u << 10,
    D_EMAIL = 1u << 11,
    D_PHONE = 1u << 12,
    D_IPV4 = 1u << 13,
    D_IPV6 = 1u << 14,
};

/* one field name (a pattern of FieldMatcher: name, *name, name*, *name*) */
typedef struct {
    char *alt;      /* lower-case, stars stripped: letters and digits match themselves,
                       '-' and '_' an optional [-_] */
    Py_ssize_t len;
    int head;       /* exact start: not after [A-Za-z0-9_-] */
    int tail;       /* prefix pattern: [A-Za-z0-9_-]{0,40} may follow */
    int simple;     /* alt is [a-z0-9_-] with at most 6 separators: matched here */
    Py_ssize_t word; /* index of its field word in words, or -1 */
} leaf_name;

#define LEAF_MAXWORDS 256

typedef struct {
    uint32_t detectors; /* bit i: _detectors.ALL_DETECTORS[i] is enabled */
    int fields;         /* the scanner has field patterns */
    Py_ssize_t nwords;  /* the scanner's field words (lower-case ASCII) */
    char **words;
    Py_ssize_t *wlen;
    uint64_t *wchars;   /* per word: the bytes it is made of (bit c & 63 of lower-case c) */
    Py_ssize_t nnames;  /* -1: the field names are not known (every word is loose) */
    leaf_name *names;
} leaf_cfg;

typedef struct {
    PyObject_HEAD leaf_cfg cfg;
} LeafConfigObject;

/* -- character classes (ASCII; bytes >= 0x80 are in none) ------------------------------ */
enum {
    K_DIGIT = 1 << 0,
    K_UPPER = 1 << 1,
    K_LOWER = 1 << 2,
    K_B64 = 1 << 3,   /* [A-Za-z0-9+/_-] */
    K_WORD = 1 << 4,  /* [A-Za-z0-9_] */
    K_LOCAL = 1 << 5, /* [A-Za-z0-9._%+-] */
    K_HEX = 1 << 6,
    K_SPACE = 1 << 7, /* \s of an ASCII regex */
    K_AWS = 1 << 8,   /* [A-Za-z0-9/+] */
    K_IP6 = 1 << 9,   /* [0-9A-Fa-f:] */
    K_VALUE = 1 << 10, /* the value of a key=value field: [^"'&\s<>,;{}\[\]\\] (+ non-ASCII) */
    K_SKIP = 1 << 11,  /* around a key=value separator: [ \t\\"'] */
    K_HIGH = 1 << 12,  /* a byte of a non-ASCII character */
};

static uint16_t LK[256];
static uint32_t LSTART[256]; /* the detectors whose literal may start with a byte */

/* the characters a detector's literal needs (all of them) */
enum {
    BAG_PRIVATE,
    BAG_JWT,
    BAG_BEARER,
    BAG_BEARER_UP,
    BAG_BASIC,
    BAG_BASIC_UP,
    BAG_GITHUB,
    BAG_STRIPE,
    BAG_SLACK,
    BAG_COUNT
};
static const char *const LEAF_BAGS[BAG_COUNT] = {"PRIVATE KEY", "eyJ", "ear",   "EAR", "asic",
                                                 "ASIC",        "gh_", "k_e",   "xo-"};


static void leaf_init_classes(void) {
    for (int c = 0; c < 256; c++) {
        uint16_t k = 0;
        int dig = c >= '0' && c <= '9', up = c >= 'A' && c <= 'Z', lo = c >= 'a' && c <= 'z';
        int alnum = dig || up || lo;
        if (dig)
            k |= K_DIGIT;
        if (up)
            k |= K_UPPER;
        if (lo)
            k |= K_LOWER;
        if (alnum || c == '+' || c == '/' || c == '_' || c == '-')
            k |= K_B64;
        if (alnum || c == '_')
            k |= K_WORD;
        if (alnum || c == '.' || c == '_' || c == '%' || c == '+' || c == '-')
            k |= K_LOCAL;
        if (dig || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            k |= K_HEX | K_IP6;
        if (c == ':')
            k |= K_IP6;
        if (c == ' ' || (c >= '\t' && c <= '\r'))
            k |= K_SPACE;
        if (alnum || c == '/' || c == '+')
            k |= K_AWS;
        if (!(k & K_SPACE) && (c == 0 || !strchr("\"'&<>,;{}[]\\", c)))
            k |= K_VALUE;
        if (c == ' ' || c == '\t' || c == '\\' || c == '"' || c == '\'')
            k |= K_SKIP;
        if (c >= 0x80)
            k |= K_HIGH;
        LK[c] = k;
        LSTART[c] = (up ? D_IBAN : 0) | (c == 'P' ? D_PRIVATE_KEY : 0) | (c == 'e' ? D_JWT : 0) |
                    (c == 'B' || c == 'b' ? D_BEARER | D_BASIC : 0) |
                    (c == 'A' ? D_AWS_ACCESS : 0) | (c == 'g' ? D_GITHUB : 0) |
                    (c == 's' || c == 'p' || c == 'r' ? D_STRIPE : 0) |
                    (c == 'x' ? D_SLACK : 0) | (c == '+' || c == '(' ? D_PHONE : 0);
    }
}

#define LIS(c, k) (LK[(unsigned char)(c)] & (k))
#define LOW(c) ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) | 0x20 : (c)))

static inline int leaf_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, const char *lit,
                          Py_ssize_t len) {
    return i + len <= n && memcmp(s + i, lit, (size_t)len) == 0;
}

/* a text contains lit (case-sensitive), from position 0 */
static int leaf_has(const unsigned char *s, Py_ssize_t n, const char *lit, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i + len <= n; i++) {
        const unsigned char *p = memchr(s + i, lit[0], (size_t)(n - len + 1 - i));
        if (p == NULL)
            return 0;
        i = p - s;
        if (memcmp(p, lit, (size_t)len) == 0)
            return 1;
    }
    return 0;
}

/* lit (lower-case) occurs in the ASCII-lower-cased text */
static int leaf_has_ci(const unsigned char *s, Py_ssize_t n, const char *lit, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i + len <= n; i++) {
        Py_ssize_t j = 0;
        while (j < len && LOW(s[i + j]) == (unsigned char)lit[j])
            j++;
        if (j == len)
            return 1;
    }
    return 0;
}

/* four digits in a row (_DIG4) */
static int leaf_has_digits4(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        run = LIS(s[i], K_DIGIT) ? run + 1 : 0;
        if (run == 4)
            return 1;
    }
    return 0;
}

/* -- card: _PATTERNS["card"] at i (s[i] in 2-6, its look-behind passed): the end or -1 --- */
static inline Py_ssize_t leaf_digits(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t j = i;
    while (j < n && LIS(s[j], K_DIGIT))
        j++;
    return j - i;
}

/* (?!\d|[.,]\d) at e, where s[e] is no digit */
static inline int leaf_card_after_ok(const unsigned char *s, Py_ssize_t n, Py_ssize_t e) {
    return !(e + 1 < n && (s[e] == '.' || s[e] == ',') && LIS(s[e + 1], K_DIGIT));
}

static Py_ssize_t leaf_card_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    /* every alternative ends at the end of a digit run, and a shorter end would leave a digit
       after it, which the look-ahead refuses: backtracking never finds another end */
    Py_ssize_t k = leaf_digits(s, n, i + 1);
    if (k >= 12) { /* \d{12,18} */
        Py_ssize_t e = i + 1 + k;
        return k <= 18 && leaf_card_after_ok(s, n, e) ? e : -1;
    }
    if (k != 3)
        return -1;
    Py_ssize_t p = i + 4;
    /* \d{3}(?:[ -]\d{4}){2}[ -]\d{1,7} */
    Py_ssize_t q = p;
    int ok = 1;
    for (int g = 0; g < 2 && ok; g++) {
        if (q < n && (s[q] == ' ' || s[q] == '-') && leaf_digits(s, n, q + 1) == 4)
            q += 5;
        else
            ok = 0;
    }
    if (ok && q < n && (s[q] == ' ' || s[q] == '-')) {
        Py_ssize_t m = leaf_digits(s, n, q + 1);
        if (m >= 1 && m <= 7 && leaf_card_after_ok(s, n, q + 1 + m))
            return q + 1 + m;
    }
    /* (?<=3)\d{3}[ -]\d{6}[ -]\d{5} */
    if (s[i] == '3' && p < n && (s[p] == ' ' || s[p] == '-') && leaf_digits(s, n, p + 1) == 6) {
        q = p + 7;
        if (q < n && (s[q] == ' ' || s[q] == '-') && leaf_digits(s, n, q + 1) == 5 &&
            leaf_card_after_ok(s, n, q + 6))
            return q + 6;
    }
    return -1;
}

static int leaf_luhn(const unsigned char *s, Py_ssize_t a, Py_ssize_t e) {
    int total = 0, odd = 0;
    for (Py_ssize_t j = e - 1; j >= a; j--) {
        if (!LIS(s[j], K_DIGIT))
            continue;
        int d = s[j] - '0';
        if (odd) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        odd = !odd;
        total += d;
    }
    return total % 10 == 0;
}

/* -- IBAN: _PATTERNS["iban"] at i (its look-behind passed); 1: a valid IBAN may start here */
/* iban_valid(s[i:e] without spaces): 15+ characters, mod 97 of s[i+4:e] + s[i:i+4] with
 * letters as 10..35 */
static int leaf_iban_ok(const unsigned char *s, Py_ssize_t i, Py_ssize_t e) {
    unsigned acc = 0;
    Py_ssize_t len = 0;
    for (Py_ssize_t k = i + 4; k < e + 4; k++) {
        unsigned char c = s[k < e ? k : k - (e - i)];
        if (c == ' ')
            continue;
        len++;
        if (LIS(c, K_DIGIT))
            acc = (acc * 10 + (unsigned)(c - '0')) % 97;
        else
            acc = (acc * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return len >= 15 && acc == 1;
}

static inline int leaf_iban_end_ok(const unsigned char *s, Py_ssize_t n, Py_ssize_t e) {
    return e >= n || !LIS(s[e], K_UPPER | K_LOWER | K_DIGIT); /* (?![A-Za-z0-9]) */
}

static int leaf_iban_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    if (i + 4 >= n)
        return 0;
    if (s[i + 4] == ' ') {
        /* (?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?: every end backtracking could reach */
        Py_ssize_t g = 0, q = i + 4;
        while (g < 7 && q + 4 < n && s[q] == ' ' && LIS(s[q + 1], K_UPPER | K_DIGIT) &&
               LIS(s[q + 2], K_UPPER | K_DIGIT) && LIS(s[q + 3], K_UPPER | K_DIGIT) &&
               LIS(s[q + 4], K_UPPER | K_DIGIT)) {
            g++;
            q += 5;
        }
        for (; g >= 2; g--) {
            Py_ssize_t after = i + 4 + 5 * g;
            for (Py_ssize_t t = 3; t >= 0; t--) {
                Py_ssize_t e = t ? after + 1 + t : after;
                if (t) {
                    if (e > n || s[after] != ' ')
                        continue;
                    Py_ssize_t k = after + 1;
                    while (k < e && LIS(s[k], K_UPPER | K_DIGIT))
                        k++;
                    if (k < e)
                        continue;
                }
                if (leaf_iban_end_ok(s, n, e) && leaf_iban_ok(s, i, e))
                    return 1;
            }
        }
        return 0;
    }
    Py_ssize_t r = 0;
    while (i + 4 + r < n && LIS(s[i + 4 + r], K_UPPER | K_DIGIT))
        r++;
    /* [A-Z0-9]{11,30}(?![A-Za-z0-9]): the look-ahead fails at the run's end (lower case
       next) or before it ([A-Z0-9] next) */
    if (r < 11 || r > 30 || !leaf_iban_end_ok(s, n, i + 4 + r))
        return 0;
    return leaf_iban_ok(s, i, i + 4 + r);
}

/* -- JWT at i (eyJ, its look-behind passed): eyJ[\w-]{4,}\.eyJ[\w-]{4,}\. ----------------- */
static int leaf_jwt_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    for (int part = 0; part < 2; part++) {
        if (!leaf_at(s, n, i, "eyJ", 3))
            return 0;
        Py_ssize_t r = 0;
        while (i + 3 + r < n && (LIS(s[i + 3 + r], K_WORD) || s[i + 3 + r] == '-'))
            r++;
        if (r < 4 || i + 3 + r >= n || s[i + 3 + r] != '.')
            return 0;
        i += 4 + r;
    }
    return 1;
}

/* -- phone: the digits of the [0-9 .()-] run at j (a match after '+' lies in it) ------- */
static Py_ssize_t leaf_phone_digits(const unsigned char *s, Py_ssize_t n, Py_ssize_t j) {
    Py_ssize_t d = 0;
    for (; j < n; j++) {
        unsigned char c = s[j];
        if (LIS(c, K_DIGIT))
            d++;
        else if (!(c == ' ' || c == '.' || c == '-' || c == '(' || c == ')'))
            break;
    }
    return d;
}

/* -- AWS access key id at i (s[i] == 'A') ------------------------------------------------ */
static int leaf_aws_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    static const char *const pre[] = {"KIA", "SIA", "BIA", "CCA", "GPA",
                                      "IDA", "ROA", "NPA", "NVA", "PKA"};
    if (i > 0 && LIS(s[i - 1], K_UPPER | K_DIGIT))
        return 0;
    if (i + 20 > n)
        return 0;
    int hit = 0;
    for (int k = 0; k < 10 && !hit; k++)
        hit = memcmp(s + i + 1, pre[k], 3) == 0;
    if (!hit)
        return 0;
    for (Py_ssize_t j = i + 4; j < i + 20; j++)
        if (!LIS(s[j], K_UPPER | K_DIGIT))
            return 0;
    return !(i + 20 < n && LIS(s[i + 20], K_UPPER | K_DIGIT));
}

/* -- e-mail: core_email_spans on bytes -------------------------------------------------- */
/* the end of _EMAIL_DOMAIN matched at p, -1 for none, -2 for not sure (too many labels) */
static Py_ssize_t leaf_domain_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t p) {
    Py_ssize_t dot[64], nd = 0, q = p;
    for (;;) {
        Py_ssize_t r = q;
        while (r < n && (LIS(s[r], K_UPPER | K_LOWER | K_DIGIT) || s[r] == '-'))
            r++;
        if (r == q || r - q > 63 || !LIS(s[q], K_UPPER | K_LOWER | K_DIGIT) ||
            !LIS(s[r - 1], K_UPPER | K_LOWER | K_DIGIT) || r >= n || s[r] != '.')
            break;
        if (nd == 64)
            return -2;
        dot[nd++] = r;
        q = r + 1;
    }
    for (Py_ssize_t j = nd - 1; j >= 0; j--) {
        Py_ssize_t t = dot[j] + 1, c = 0;
        while (c < 24 && t + c < n && LIS(s[t + c], K_UPPER | K_LOWER))
            c++;
        if (c < 2)
            continue;
        if (t + c < n && (LIS(s[t + c], K_WORD) || s[t + c] == '-'))
            continue; /* (?![\w-]) */
        return t + c;
    }
    return -1;
}

/* the e-mail findings: 0 none, 1 exactly one and it is (0, n), -1 anything else; with
 * whole: 1 when one of them is (0, n), 0 when none is, -1 not sure */
static int leaf_emails(const unsigned char *s, Py_ssize_t n, int whole) {
    int count = 0, full = 0;
    for (int sep = 0; sep < 2; sep++) { /* "@", then "%40" */
        Py_ssize_t seplen = sep ? 3 : 1;
        for (Py_ssize_t i = 0; i + seplen <= n; i++) {
            const unsigned char *at = memchr(s + i, sep ? '%' : '@', (size_t)(n - i));
            if (at == NULL)
                break;
            i = at - s;
            if (sep && (i + 3 > n || s[i + 1] != '4' || s[i + 2] != '0'))
                continue;
            Py_ssize_t k = 0;
            while (k < 64 && i - 1 - k >= 0 && LIS(s[i - 1 - k], K_LOCAL))
                k++;
            if (k == 0)
                continue;
            Py_ssize_t start = i - k;
            if (whole && start > 0)
                continue;
            if (start > 0) {
                unsigned char b = s[start - 1];
                if (b >= 0x80)
                    return -1; /* str.isalnum() of a non-ASCII character: Python decides */
                if (LIS(b, K_LOCAL))
                    continue;
            }
            Py_ssize_t end = leaf_domain_end(s, n, i + seplen);
            if (end == -2)
                return -1;
            if (end < 0)
                continue;
            if (whole && end == n)
                return 1;
            count++;
            full = start == 0 && end == n;
        }
    }
    if (count == 0 || whole)
        return 0;
    return count == 1 && full ? 1 : -1;
}

/* -- base64 ---------------------------------------------------------------------------- */
static inline int leaf_b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' || c == '-' ? 62 : 63; /* '/' or '_' */
}

/* -- Bearer / Basic at i ([Bb], not after \w, its word after it) -------------------------- */
/* \s+[A-Za-z0-9._~+/-]{8,} at j: a bearer finding */
static int leaf_bearer_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t j) {
    if (j >= n || !LIS(s[j], K_SPACE))
        return 0;
    while (j < n && LIS(s[j], K_SPACE))
        j++;
    Py_ssize_t r = 0;
    while (j + r < n && (LIS(s[j + r], K_UPPER | K_LOWER | K_DIGIT) || s[j + r] == '.' ||
                         s[j + r] == '_' || s[j + r] == '~' || s[j + r] == '+' ||
                         s[j + r] == '/' || s[j + r] == '-'))
        r++;
    return r >= 8;
}

/* \s+[A-Za-z0-9+/]{4,} at j whose base64 decoding may hold ':' (_basic_ok): 1 may be a
 * finding (the decoding of the whole run: a strict decoder either fails or gives those bytes) */
static int leaf_basic_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t j) {
    if (j >= n || !LIS(s[j], K_SPACE))
        return 0;
    while (j < n && LIS(s[j], K_SPACE))
        j++;
    Py_ssize_t r = 0;
    while (j + r < n && (LIS(s[j + r], K_UPPER | K_LOWER | K_DIGIT) || s[j + r] == '+' ||
                         s[j + r] == '/'))
        r++;
    if (r < 4)
        return 0;
    uint32_t acc = 0;
    int bits = 0;
    for (Py_ssize_t k = j; k < j + r; k++) {
        acc = (acc << 6) | (uint32_t)leaf_b64_val(s[k]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if ((unsigned char)(acc >> bits) == ':')
                return 1;
            acc &= (1u << bits) - 1;
        }
    }
    return 0;
}

#define LEAF_DECODED_MAX 1536

static int leaf_scan(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n, int fields,
                     int encoded);

/* b64_text(s[a:e]) and, when it is text, whether that text holds a finding: 0 no base64
 * finding from this run, 1 not sure */
static int leaf_b64_run(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t a,
                        Py_ssize_t e) {
    int std = 0, url = 0;
    for (Py_ssize_t j = a; j < e; j++) {
        if (s[j] == '+' || s[j] == '/')
            std = 1;
        else if (s[j] == '-' || s[j] == '_')
            url = 1;
    }
    if (std && url)
        return 0;
    while (e > a && s[e - 1] == '=')
        e--;
    Py_ssize_t len = e - a;
    if (len % 4 == 1)
        return 0;
    unsigned char out[LEAF_DECODED_MAX];
    Py_ssize_t nout = 0;
    int need = 0, nonascii = 0, nonprint = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    uint32_t acc = 0;
    int bits = 0;
    for (Py_ssize_t j = a; j < e; j++) {
        acc = (acc << 6) | (uint32_t)leaf_b64_val(s[j]);
        bits += 6;
        if (bits < 8)
            continue;
        bits -= 8;
        unsigned char b = (unsigned char)(acc >> bits);
        acc &= (1u << bits) - 1;
        /* strict UTF-8 (Python's decoder), printable ASCII */
        if (need) {
            if (b < lo || b > hi)
                return 0;
            lo = 0x80;
            hi = 0xBF;
            need--;
            continue;
        }
        if (b < 0x80) {
            if (b < 0x20 ? !(b == '\t' || b == '\n' || b == '\r') : b == 0x7F)
                nonprint = 1;
            if (nout < LEAF_DECODED_MAX)
                out[nout] = b;
            nout++;
            continue;
        }
        nonascii = 1;
        if (!utf8_lead(b, &need, &lo, &hi))
            return 0; /* invalid start byte */
    }
    if (need)
        return 0; /* truncated sequence */
    if (nonascii)
        return 1; /* valid UTF-8 beyond ASCII: str.isprintable() decides, in Python */
    if (nonprint || nout < 12)
        return 0;
    if (nout > LEAF_DECODED_MAX)
        return 1;
    return leaf_scan(cfg, out, nout, 1, 0) != LEAF_CLEAN;
}

/* -- field patterns -------------------------------------------------------------------- */
/* after the name of a key=value pattern, at q: its tail, separator and a value character
 * (a necessary condition of the regex) */
static int leaf_kv_after(const unsigned char *s, Py_ssize_t n, Py_ssize_t q, int tail) {
    if (tail) {
        Py_ssize_t r = 0;
        while (q + r < n && (LIS(s[q + r], K_WORD) || s[q + r] == '-'))
            r++;
        if (r > 40)
            return 0;
        q += r;
    }
    while (q < n && LIS(s[q], K_SKIP))
        q++;
    if (q >= n || (s[q] != ':' && s[q] != '='))
        return 0;
    q++;
    while (q < n && LIS(s[q], K_SKIP))
        q++;
    return q < n && (LIS(s[q], K_VALUE) || s[q] >= 0x80);
}

static int leaf_kv_name(const unsigned char *s, Py_ssize_t n, Py_ssize_t p,
                        const leaf_name *nm, Py_ssize_t j) {
    for (; j < nm->len; j++) {
        char c = nm->alt[j];
        if (c == '-' || c == '_') { /* [-_]? */
            if (p < n && (s[p] == '-' || s[p] == '_') && leaf_kv_name(s, n, p + 1, nm, j + 1))
                return 1;
            continue;
        }
        if (p >= n || LOW(s[p]) != (unsigned char)c)
            return 0;
        p++;
    }
    return leaf_kv_after(s, n, p, nm->tail);
}

/* 1 when a field pattern may match (in the lower-cased text) */
static int leaf_fields(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n, int kv) {
    int html = leaf_has_ci(s, n, "name=", 5);
    int xml = leaf_has(s, n, "</", 2);
    if (!kv && !html && !xml)
        return 0;
    /* the lower-case ASCII bytes present, as two bit sets (non-ASCII bytes set bits too:
       a superset, only a filter) */
    uint64_t s0 = 0, s1 = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = LOW(s[i]);
        uint64_t bit = 1ull << (c & 63), sel = (uint64_t)0 - (uint64_t)(c >> 6 & 1);
        s0 |= bit & ~sel;
        s1 |= bit & sel;
    }
    const uint64_t seen[2] = {s0, s1};
    uint64_t low1 = s1;
    uint64_t present[LEAF_MAXWORDS / 64] = {0};
    int any = 0;
    Py_ssize_t nw = cfg->nwords < LEAF_MAXWORDS ? cfg->nwords : LEAF_MAXWORDS;
    for (Py_ssize_t w = 0; w < nw; w++) {
        const char *word = cfg->words[w];
        Py_ssize_t len = cfg->wlen[w];
        /* every byte of the word occurs (a cheap filter before the search) */
        uint64_t need = cfg->wchars[w * 2], need1 = cfg->wchars[w * 2 + 1];
        if ((need & ~seen[0]) || (need1 & ~low1))
            continue;
        if (leaf_has_ci(s, n, word, len)) {
            present[w >> 6] |= 1ull << (w & 63);
            any = 1;
        }
    }
    if (cfg->nwords > LEAF_MAXWORDS)
        return 1;
    if (!any)
        return 0;
    if (html || xml)
        return 1;
    if (cfg->nnames < 0)
        return 1; /* kv: not sure without the names */
    for (Py_ssize_t k = 0; k < cfg->nnames; k++) {
        const leaf_name *nm = &cfg->names[k];
        if (nm->word < 0)
            return 1;
        if (!(present[nm->word >> 6] >> (nm->word & 63) & 1))
            continue;
        if (!nm->simple)
            return 1;
        for (Py_ssize_t p = 0; p < n; p++) {
            if (nm->head && p > 0 && (LIS(s[p - 1], K_WORD) || s[p - 1] == '-'))
                continue;
            if (leaf_kv_name(s, n, p, nm, 0))
                return 1;
        }
    }
    return 0;
}

/* -- the classifier -------------------------------------------------------------------- */
#define SEEN(c) (seen[(unsigned char)(c)])

/* every character of LEAF_BAGS[b] occurs */
static inline int leaf_hasall(const uint8_t *seen, int b) {
    for (const char *p = LEAF_BAGS[b]; *p; p++)
        if (!seen[(unsigned char)*p])
            return 0;
    return 1;
}
#define HASALL(b) leaf_hasall(seen, (b))

/* list(findings(s, fields=fields, encoded=encoded)): LEAF_CLEAN, LEAF_EMAIL, LEAF_CARD or
 * LEAF_UNKNOWN as in the header */
static int leaf_scan(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n, int fields,
                     int encoded) {
    uint32_t det = cfg->detectors;
    /* one pass: the ASCII bytes present (a non-ASCII byte c marks c & 127 too: only gates
       are built on these), the character classes present, whether a run of base64 characters
       reached 16 (32), how many digits */
    uint8_t seen[128];
    memset(seen, 0, sizeof(seen));
    unsigned kor = 0;
    size_t run = 0, runs = 0, ndig = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        unsigned k = LK[c];
        seen[c & 127] = 1;
        kor |= k;
        run = (run + 1) & ((size_t)0 - (k >> 3 & 1)); /* K_B64 */
        runs |= run; /* >= 2^k when a run reached 2^k */
        ndig += k & K_DIGIT;
    }
    int nonascii = (kor & K_HIGH) != 0;
    int card = 0; /* a card finding (0, n) */
    /* the detectors decided through their literal prefixes: first the characters their
       literal needs (all present), then one pass over the text */
    uint32_t lit = det & (D_PRIVATE_KEY | D_JWT | D_BEARER | D_BASIC | D_AWS_ACCESS | D_GITHUB |
                          D_STRIPE | D_SLACK | D_IBAN | D_PHONE);
    if (ndig < 4)
        lit &= ~(uint32_t)(D_IBAN | D_PHONE); /* their trigger: four digits */
    if (!HASALL(BAG_PRIVATE))
        lit &= ~(uint32_t)D_PRIVATE_KEY;
    if (!HASALL(BAG_JWT))
        lit &= ~(uint32_t)D_JWT;
    int bspace = (SEEN('B') || SEEN('b')) && (kor & K_SPACE);
    if (!bspace || !(HASALL(BAG_BEARER) || HASALL(BAG_BEARER_UP)))
        lit &= ~(uint32_t)D_BEARER;
    if (!bspace || !(HASALL(BAG_BASIC) || HASALL(BAG_BASIC_UP)))
        lit &= ~(uint32_t)D_BASIC;
    if (!SEEN('A') || n < 20)
        lit &= ~(uint32_t)D_AWS_ACCESS;
    if (!HASALL(BAG_GITHUB))
        lit &= ~(uint32_t)D_GITHUB;
    if (!HASALL(BAG_STRIPE))
        lit &= ~(uint32_t)D_STRIPE;
    if (!HASALL(BAG_SLACK))
        lit &= ~(uint32_t)D_SLACK;
    if (!SEEN('+') && !SEEN('('))
        lit &= ~(uint32_t)D_PHONE;
    if (!(kor & K_UPPER))
        lit &= ~(uint32_t)D_IBAN;
    if ((lit & (D_IBAN | D_PHONE)) && !leaf_has_digits4(s, n))
        lit &= ~(uint32_t)(D_IBAN | D_PHONE);
    if (lit) {
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char c = s[i];
            if (!(LSTART[c] & lit))
                continue;
            int wb = i == 0 || !LIS(s[i - 1], K_WORD); /* no \w before */
            switch (c) {
            case 'P':
                if ((lit & D_PRIVATE_KEY) && leaf_at(s, n, i, "PRIVATE KEY", 11))
                    return LEAF_UNKNOWN;
                break;
            case 'e':
                if ((lit & D_JWT) && wb && !(i > 0 && s[i - 1] == '-') && leaf_jwt_at(s, n, i))
                    return LEAF_UNKNOWN;
                break;
            case 'B':
            case 'b':
                if (!wb)
                    break;
                if ((lit & D_BEARER) &&
                    (leaf_at(s, n, i + 1, "earer", 5) || leaf_at(s, n, i + 1, "EARER", 5)) &&
                    leaf_bearer_at(s, n, i + 6))
                    return LEAF_UNKNOWN;
                if ((lit & D_BASIC) &&
                    (leaf_at(s, n, i + 1, "asic", 4) || leaf_at(s, n, i + 1, "ASIC", 4)) &&
                    leaf_basic_at(s, n, i + 5))
                    return LEAF_UNKNOWN;
                break;
            case 'A':
                if ((lit & D_AWS_ACCESS) && leaf_aws_at(s, n, i))
                    return LEAF_UNKNOWN;
                break;
            case 'g':
                if ((lit & D_GITHUB) && wb && i + 3 < n && s[i + 1] == 'h' &&
                    strchr("pousr", s[i + 2]) != NULL && s[i + 2] && s[i + 3] == '_')
                    return LEAF_UNKNOWN;
                if ((lit & D_GITHUB) && wb && leaf_at(s, n, i, "github_pat_", 11))
                    return LEAF_UNKNOWN;
                break;
            case 'x':
                if ((lit & D_SLACK) && wb && i + 4 < n && s[i + 1] == 'o' && s[i + 2] == 'x' &&
                    strchr("abprs", s[i + 3]) != NULL && s[i + 3] && s[i + 4] == '-')
                    return LEAF_UNKNOWN;
                break;
            case '+':
                if ((lit & D_PHONE) && i + 1 < n && s[i + 1] >= '1' && s[i + 1] <= '9' &&
                    !(i > 0 && (LIS(s[i - 1], K_WORD) || s[i - 1] == '+')) &&
                    leaf_phone_digits(s, n, i + 1) >= 8)
                    return LEAF_UNKNOWN;
                break;
            case '(':
                if ((lit & D_PHONE) && i + 4 < n && leaf_digits(s, n, i + 1) == 3 &&
                    s[i + 4] == ')')
                    return LEAF_UNKNOWN;
                break;
            default:
                break;
            }
            if ((lit & D_STRIPE) && (c == 's' || c == 'p' || c == 'r') && wb &&
                (leaf_at(s, n, i + 1, "k_live_", 7) || leaf_at(s, n, i + 1, "k_test_", 7)))
                return LEAF_UNKNOWN;
            if ((lit & D_IBAN) && LIS(c, K_UPPER) && i + 3 < n && LIS(s[i + 1], K_UPPER) &&
                LIS(s[i + 2], K_DIGIT) && LIS(s[i + 3], K_DIGIT) &&
                !(i > 0 && LIS(s[i - 1], K_UPPER | K_LOWER | K_DIGIT)) && leaf_iban_at(s, n, i))
                return LEAF_UNKNOWN;
        }
    }
    /* AWS secret key: "secret" (any case) ... [:=] ... exactly 40 of [A-Za-z0-9/+] */
    if ((det & D_AWS_SECRET) && runs >= 32 && (SEEN(':') || SEEN('=')) &&
        leaf_has_ci(s, n, "secret", 6)) {
        Py_ssize_t r = 0;
        for (Py_ssize_t i = 0; i <= n; i++) {
            if (i < n && LIS(s[i], K_AWS)) {
                r++;
                continue;
            }
            if (r == 40)
                return LEAF_UNKNOWN;
            r = 0;
        }
    }
    /* cards: every match of the regex that passes Luhn */
    if ((det & D_CARD) && ndig >= 13) { /* a match holds 13 to 19 digits */
        for (Py_ssize_t i = 0; i < n; i++) {
            if (s[i] < '2' || s[i] > '6')
                continue;
            if (i > 0 && (LIS(s[i - 1], K_DIGIT) || s[i - 1] == '.' || s[i - 1] == ',' ||
                          s[i - 1] == '-'))
                continue;
            Py_ssize_t e = leaf_card_at(s, n, i);
            if (e < 0 || !leaf_luhn(s, i, e))
                continue;
            if (i == 0 && e == n)
                card = 1;
            else
                return LEAF_UNKNOWN;
        }
    }
    /* IPv4: a run of [0-9.] with three dots and a digit.digit */
    if ((det & D_IPV4) && SEEN('.') && ndig >= 4) { /* four numbers */
        int dots = 0, dd = 0;
        for (Py_ssize_t i = 0; i <= n; i++) {
            if (i < n && (LIS(s[i], K_DIGIT) || s[i] == '.')) {
                if (s[i] == '.') {
                    dots++;
                    if (i > 0 && LIS(s[i - 1], K_DIGIT) && i + 1 < n && LIS(s[i + 1], K_DIGIT))
                        dd = 1;
                }
                continue;
            }
            if (dots >= 3 && dd)
                return LEAF_UNKNOWN;
            dots = dd = 0;
        }
    }
    /* IPv6: a whole run of [0-9A-Fa-f:] of 3-39 with two colons, no [\w.] around it, that
       could be an address */
    if ((det & D_IPV6) && SEEN(':')) {
        Py_ssize_t a = 0;
        for (Py_ssize_t i = 0; i <= n; i++) {
            if (i < n && LIS(s[i], K_IP6))
                continue;
            if (i - a >= 3 && i - a <= 39 && !(a > 0 && (LIS(s[a - 1], K_WORD) || s[a - 1] == '.')) &&
                !(i < n && (LIS(s[i], K_WORD) || s[i] == '.'))) {
                int colons = 0, dbl = 0;
                for (Py_ssize_t j = a; j < i; j++) {
                    colons += s[j] == ':';
                    dbl |= s[j] == ':' && j + 1 < i && s[j + 1] == ':';
                }
                /* an IPv6 address has 8 groups (7 colons) or "::" */
                if (colons >= 2 && (colons == 7 || dbl))
                    return LEAF_UNKNOWN;
            }
            a = i + 1;
        }
    }
    /* named fields */
    if (fields && cfg->fields && (SEEN(':') || SEEN('=') || SEEN('<'))) {
        if (nonascii && (leaf_has(s, n, "\xC4\xB0", 2) || leaf_has(s, n, "\xE2\x84\xAA", 3)))
            return LEAF_UNKNOWN; /* str.lower() makes ASCII of these */
        if (leaf_fields(cfg, s, n, SEEN(':') || SEEN('=')))
            return LEAF_UNKNOWN;
    }
    /* e-mails */
    int email = 0;
    if ((det & D_EMAIL) && (SEEN('@') || SEEN('%'))) {
        email = leaf_emails(s, n, 0);
        if (email < 0)
            return LEAF_UNKNOWN;
    }
    /* base64 runs (the spans of b64_runs) that decode to text holding a finding */
    if (encoded && runs >= 16) {
        Py_ssize_t i = 0;
        while (i < n) {
            if (!LIS(s[i], K_B64)) {
                i++;
                continue;
            }
            Py_ssize_t a = i;
            while (i < n && LIS(s[i], K_B64))
                i++;
            if (i - a < 16)
                continue;
            Py_ssize_t e = i;
            while (e < n && e - i < 3 && s[e] == '=')
                e++;
            if (e - i > 2 || (e < n && (LIS(s[e], K_B64) || s[e] == '=')))
                continue;
            if (leaf_b64_run(cfg, s, a, e))
                return LEAF_UNKNOWN;
        }
    }
    if (card + (email == 1) > 1)
        return LEAF_UNKNOWN;
    return card ? LEAF_CARD : email == 1 ? LEAF_EMAIL : LEAF_CLEAN;
}

/* scanner.whole(s): the first finding (detectors and e-mails only) that covers all of s */
static int leaf_whole(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n) {
    uint32_t det = cfg->detectors;
    if (n == 0)
        return LEAF_CLEAN;
    /* bearer, basic and aws_secret_key findings start after their prefix: never whole.
       An e-mail or a card holds characters that no other whole match can (every other
       detector's whole match is made of its own classes), so its order does not matter. */
    if ((det & D_EMAIL) && (memchr(s, '@', (size_t)n) != NULL || leaf_has(s, n, "%40", 3))) {
        int r = leaf_emails(s, n, 1);
        if (r == 1)
            return LEAF_EMAIL;
        if (r < 0)
            return LEAF_UNKNOWN;
    }
    unsigned char c0 = s[0];
    if ((det & D_CARD) && c0 >= '2' && c0 <= '6') {
        Py_ssize_t e = leaf_card_at(s, n, 0);
        if (e == n && leaf_luhn(s, 0, n))
            return LEAF_CARD;
    }
    int only_ip4 = 0, only_ip6 = 0, only_phone = 0, dots = 0, colons = 0;
    if ((det & (D_IPV4 | D_IPV6 | D_PHONE)) &&
        (LIS(c0, K_IP6) || c0 == '+' || c0 == '(')) { /* where an IP or phone may start */
        only_ip4 = only_ip6 = only_phone = 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char c = s[i];
            dots += c == '.';
            colons += c == ':';
            if (!(LIS(c, K_DIGIT) || c == '.'))
                only_ip4 = 0;
            if (!LIS(c, K_IP6))
                only_ip6 = 0;
            if (!(LIS(c, K_DIGIT) || c == '+' || c == ' ' || c == '.' || c == '-' || c == '(' ||
                  c == ')'))
                only_phone = 0;
            if (!(only_ip4 | only_ip6 | only_phone))
                break;
        }
    }
    /* the other detectors: their literal prefix at 0 and, where their whole match has few
       classes, a text made only of those */
    if ((det & D_PRIVATE_KEY) && leaf_at(s, n, 0, "-----BEGIN ", 11))
        return LEAF_UNKNOWN;
    if ((det & D_JWT) && leaf_jwt_at(s, n, 0))
        return LEAF_UNKNOWN;
    if ((det & D_AWS_ACCESS) && c0 == 'A' && n == 20)
        return LEAF_UNKNOWN;
    if ((det & D_GITHUB) && ((leaf_at(s, n, 0, "gh", 2) && n >= 40) ||
                             (leaf_at(s, n, 0, "github_pat_", 11) && n >= 33)))
        return LEAF_UNKNOWN;
    if ((det & D_STRIPE) && (c0 == 's' || c0 == 'p' || c0 == 'r') && n >= 18 &&
        (leaf_at(s, n, 1, "k_live_", 7) || leaf_at(s, n, 1, "k_test_", 7)))
        return LEAF_UNKNOWN;
    if ((det & D_SLACK) && leaf_at(s, n, 0, "xox", 3) && n >= 15)
        return LEAF_UNKNOWN;
    if ((det & D_IBAN) && n >= 4 && LIS(c0, K_UPPER) && LIS(s[1], K_UPPER) &&
        LIS(s[2], K_DIGIT) && LIS(s[3], K_DIGIT) && leaf_iban_at(s, n, 0))
        return LEAF_UNKNOWN;
    if ((det & D_PHONE) && (c0 == '+' || c0 == '(') && only_phone &&
        leaf_phone_digits(s, n, 1) >= 8)
        return LEAF_UNKNOWN;
    if ((det & D_IPV4) && only_ip4 && dots == 3)
        return LEAF_UNKNOWN;
    if ((det & D_IPV6) && only_ip6 && colons >= 2 && n <= 39 &&
        (colons == 7 || leaf_has(s, n, "::", 2)))
        return LEAF_UNKNOWN;
    return LEAF_CLEAN;
}

static int leaf_class(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n, int whole) {
    if (LK['A'] == 0)
        leaf_init_classes();
    return whole ? leaf_whole(cfg, s, n) : leaf_scan(cfg, s, n, 1, 1);
}

/* the order of _detectors.ALL_DETECTORS */
static const char *const LEAF_DETECTORS[] = {
    "private_key", "jwt",  "bearer", "basic", "aws_access_key", "aws_secret_key", "github_token",
    "stripe_key",  "slack_token", "iban", "card", "email", "phone", "ipv4", "ipv6", NULL};

static void LeafConfig_clear(LeafConfigObject *self) {
    for (Py_ssize_t i = 0; i < self->cfg.nwords; i++)
        PyMem_Free(self->cfg.words[i]);
    PyMem_Free(self->cfg.words);
    PyMem_Free(self->cfg.wlen);
    PyMem_Free(self->cfg.wchars);
    for (Py_ssize_t i = 0; i < self->cfg.nnames; i++)
        PyMem_Free(self->cfg.names[i].alt);
    PyMem_Free(self->cfg.names);
    self->cfg.words = NULL;
    self->cfg.wlen = NULL;
    self->cfg.wchars = NULL;
    self->cfg.nwords = 0;
    self->cfg.names = NULL;
    self->cfg.nnames = -1;
}

/* _detect_fields.field_word: the longest [a-z0-9]+ piece of the lower-case pattern (the
 * first of equal lengths), matched against words; -1 when not there */
static Py_ssize_t leaf_word_of(const leaf_cfg *cfg, const char *name, Py_ssize_t len) {
    Py_ssize_t best = -1, blen = 0;
    for (Py_ssize_t i = 0; i < len;) {
        if (!LIS(name[i], K_UPPER | K_LOWER | K_DIGIT)) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < len && LIS(name[j], K_UPPER | K_LOWER | K_DIGIT))
            j++;
        if (j - i > blen) {
            best = i;
            blen = j - i;
        }
        i = j;
    }
    if (best < 0)
        return -1;
    for (Py_ssize_t w = 0; w < cfg->nwords; w++) {
        if (cfg->wlen[w] != blen)
            continue;
        Py_ssize_t k = 0;
        while (k < blen && LOW(name[best + k]) == (unsigned char)cfg->words[w][k])
            k++;
        if (k == blen)
            return w;
    }
    return -1;
}

static int leaf_set_names(leaf_cfg *cfg, PyObject *names) {
    Py_ssize_t nn = PyTuple_GET_SIZE(names);
    cfg->names = PyMem_Calloc((size_t)(nn ? nn : 1), sizeof(leaf_name));
    if (cfg->names == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    cfg->nnames = 0;
    for (Py_ssize_t i = 0; i < nn; i++) {
        PyObject *item = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "LeafConfig: field names are str");
            return -1;
        }
        Py_ssize_t len;
        const char *nm = PyUnicode_AsUTF8AndSize(item, &len);
        if (nm == NULL)
            return -1;
        int alnum = 0, ascii = 1;
        for (Py_ssize_t k = 0; k < len; k++) {
            if ((unsigned char)nm[k] >= 0x80)
                ascii = 0;
            else if (LIS(nm[k], K_UPPER | K_LOWER | K_DIGIT))
                alnum = 1;
        }
        if (ascii && !alnum)
            continue; /* field_patterns drops names without a letter or digit */
        leaf_name *out = &cfg->names[cfg->nnames];
        /* n.strip("*").lower() */
        Py_ssize_t a = 0, e = len;
        while (a < e && nm[a] == '*')
            a++;
        while (e > a && nm[e - 1] == '*')
            e--;
        out->alt = PyMem_Malloc((size_t)(e - a) + 1);
        if (out->alt == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        cfg->nnames++;
        int seps = 0, simple = ascii;
        for (Py_ssize_t k = a; k < e; k++) {
            unsigned char c = (unsigned char)nm[k];
            out->alt[k - a] = (char)LOW(c);
            if (c == '-' || c == '_')
                seps++;
            else if (!LIS(c, K_UPPER | K_LOWER | K_DIGIT))
                simple = 0;
        }
        out->alt[e - a] = 0;
        out->len = e - a;
        out->head = len == 0 || nm[0] != '*';
        out->tail = len > 0 && nm[len - 1] == '*';
        out->simple = simple && seps <= 6 && out->len > 0;
        out->word = ascii ? leaf_word_of(cfg, nm, len) : -1;
    }
    return 0;
}

/* LeafConfig(detectors: tuple[str, ...], words: tuple[str, ...], fields: bool,
 *            names: tuple[str, ...] | None = None): names are the scanner's field names
 * (TextScanner.field_names); without them key=value patterns are decided less often */
static int LeafConfig_init(LeafConfigObject *self, PyObject *args, PyObject *kwds) {
    PyObject *dets, *words, *names = Py_None;
    int fields;
    (void)kwds;
    if (!PyArg_ParseTuple(args, "O!O!p|O:LeafConfig", &PyTuple_Type, &dets, &PyTuple_Type,
                          &words, &fields, &names))
        return -1;
    if (names != Py_None && !PyTuple_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "LeafConfig: names is a tuple or None");
        return -1;
    }
    if (LK['A'] == 0)
        leaf_init_classes();
    LeafConfig_clear(self);
    self->cfg.detectors = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(dets); i++) {
        const char *d = PyUnicode_AsUTF8(PyTuple_GET_ITEM(dets, i));
        if (d == NULL)
            return -1;
        for (int j = 0; LEAF_DETECTORS[j] != NULL; j++)
            if (strcmp(d, LEAF_DETECTORS[j]) == 0)
                self->cfg.detectors |= 1u << j;
    }
    self->cfg.fields = fields;
    Py_ssize_t nw = PyTuple_GET_SIZE(words);
    self->cfg.words = PyMem_Calloc((size_t)(nw ? nw : 1), sizeof(char *));
    self->cfg.wlen = PyMem_Calloc((size_t)(nw ? nw : 1), sizeof(Py_ssize_t));
    self->cfg.wchars = PyMem_Calloc((size_t)(nw ? nw : 1) * 2, sizeof(uint64_t));
    if (self->cfg.words == NULL || self->cfg.wlen == NULL || self->cfg.wchars == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nw; i++) {
        Py_ssize_t len;
        const char *w = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(words, i), &len);
        if (w == NULL)
            return -1;
        self->cfg.words[i] = PyMem_Malloc((size_t)len + 1);
        if (self->cfg.words[i] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(self->cfg.words[i], w, (size_t)len + 1);
        self->cfg.wlen[i] = len;
        self->cfg.nwords = i + 1;
        for (Py_ssize_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)w[k];
            if (c >= 0x80 || LIS(c, K_UPPER)) {
                /* not the lower-case ASCII the contract says: never filtered out */
                self->cfg.wchars[i * 2] = self->cfg.wchars[i * 2 + 1] = 0;
                break;
            }
            self->cfg.wchars[i * 2 + (c >> 6)] |= 1ull << (c & 63);
        }
    }
    if (names != Py_None && leaf_set_names(&self->cfg, names) < 0)
        return -1;
    return 0;
}

static void LeafConfig_dealloc(LeafConfigObject *self) {
    LeafConfig_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* classify(text: str, whole: bool = False) -> int: leaf_class of the UTF-8 of text */
static PyObject *LeafConfig_classify(LeafConfigObject *self, PyObject *const *args,
                                     Py_ssize_t nargs) {
    int whole = 0;
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "classify(text: str, whole: bool = False)");
        return NULL;
    }
    if (nargs == 2 && (whole = PyObject_IsTrue(args[1])) < 0)
        return NULL;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(args[0], &n);
    if (s == NULL) {
        PyErr_Clear(); /* lone surrogates: never a JSON string here */
        return PyLong_FromLong(LEAF_UNKNOWN);
    }
    return PyLong_FromLong(leaf_class(&self->cfg, (const unsigned char *)s, n, whole));
}

static PyMethodDef LeafConfig_methods[] = {
    {"classify", (PyCFunction)(void (*)(void))LeafConfig_classify, METH_FASTCALL,
     "What the scanner finds in one JSON string: 0 clean, 1 e-mail, 2 card, 3 unknown."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject LeafConfigType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "replaygate.stages._mask_core.LeafConfig",
    .tp_basicsize = sizeof(LeafConfigObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The scanner's settings for the leaf classifier.",
    .tp_methods = LeafConfig_methods,
    .tp_init = (initproc)LeafConfig_init,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)LeafConfig_dealloc,
};
