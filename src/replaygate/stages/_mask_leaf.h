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
 */

enum { LEAF_CLEAN = 0, LEAF_EMAIL = 1, LEAF_CARD = 2, LEAF_UNKNOWN = 3 };

typedef struct {
    uint32_t detectors; /* bit i: _detectors.ALL_DETECTORS[i] is enabled */
    int fields;         /* the scanner has field patterns */
    Py_ssize_t nwords;  /* the scanner's field words (lower-case ASCII) */
    char **words;
    Py_ssize_t *wlen;
} leaf_cfg;

typedef struct {
    PyObject_HEAD leaf_cfg cfg;
} LeafConfigObject;

static int leaf_class(const leaf_cfg *cfg, const unsigned char *s, Py_ssize_t n, int whole) {
    (void)cfg;
    (void)s;
    (void)n;
    (void)whole;
    return LEAF_UNKNOWN;
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
    self->cfg.words = NULL;
    self->cfg.wlen = NULL;
    self->cfg.nwords = 0;
}

/* LeafConfig(detectors: tuple[str, ...], words: tuple[str, ...], fields: bool) */
static int LeafConfig_init(LeafConfigObject *self, PyObject *args, PyObject *kwds) {
    PyObject *dets, *words;
    int fields;
    (void)kwds;
    if (!PyArg_ParseTuple(args, "O!O!p:LeafConfig", &PyTuple_Type, &dets, &PyTuple_Type, &words,
                          &fields))
        return -1;
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
    if (self->cfg.words == NULL || self->cfg.wlen == NULL) {
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
    }
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
