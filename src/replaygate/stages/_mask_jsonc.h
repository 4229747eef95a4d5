/* The compiled JSON masker (included by _mask_core.c): see core_mask_json. */

static PyObject *core_mask_json(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    (void)args;
    (void)nargs;
    Py_RETURN_NOTIMPLEMENTED;
}
