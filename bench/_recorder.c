/* Optional C speed-up of bench/recorder.py: the recorder's row log (Log). Its pure-Python twin is
 * bench.recorder.PyLog, used when this extension is not built (bench.recorder.ACCELERATED says which).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* -- Log: the recorder's flat row log ---------------------------------------------------------------- */

/* Rows of four doubles (kind, item, t, value), appended by the scenario's hooks without a Python
 * frame; bench/recorder.py turns them into numpy columns every `batch` puts. */
typedef struct {
    PyObject_HEAD
    double *rows;
    Py_ssize_t n, cap; /* doubles */
    Py_ssize_t batch, puts_left;
    PyObject *on_full;
} LogObject;

enum { KIND_ARRIVE = 0, KIND_PUT = 1, KIND_DONE = 2, KIND_GET = 3 };

static inline int
as_double(PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o))
        *out = PyFloat_AS_DOUBLE(o);
    else if (PyLong_CheckExact(o))
        *out = PyLong_AsDouble(o);
    else
        *out = PyFloat_AsDouble(o);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int
log_row(LogObject *log, double kind, PyObject *const *argv, Py_ssize_t nargs, Py_ssize_t want, const char *name)
{
    double v[3] = {0.0, 0.0, 0.0};
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (as_double(argv[i], &v[i]))
            return -1;
    if (log->n + 4 > log->cap) {
        Py_ssize_t cap = log->cap ? log->cap * 2 : 4096;
        double *rows = PyMem_Realloc(log->rows, cap * sizeof(double));
        if (rows == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        log->rows = rows;
        log->cap = cap;
    }
    double *row = log->rows + log->n;
    log->n += 4;
    row[0] = kind;
    row[1] = v[0];
    row[2] = v[1];
    row[3] = v[2];
    return 0;
}

static PyObject *
Log_arrive(LogObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (log_row(self, KIND_ARRIVE, argv, nargs, 2, "arrive"))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Log_done(LogObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (log_row(self, KIND_DONE, argv, nargs, 2, "done"))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Log_put(LogObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (self->on_full == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Log.__init__() was not called");
        return NULL;
    }
    if (log_row(self, KIND_PUT, argv, nargs, 3, "put"))
        return NULL;
    if (--self->puts_left == 0)
        return PyObject_CallNoArgs(self->on_full);
    Py_RETURN_NONE;
}

static PyObject *
Log_get(LogObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    double worker;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "get() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_double(argv[1], &worker))
        return NULL;
    PyObject *rest[3] = {argv[0], argv[2], argv[3]};
    if (log_row(self, KIND_GET + worker, rest, 3, 3, "get"))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Log_take(LogObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyBytes_FromStringAndSize((const char *)self->rows, self->n * (Py_ssize_t)sizeof(double));
    if (out == NULL)
        return NULL;
    self->n = 0;
    self->puts_left = self->batch;
    return out;
}

static Py_ssize_t
Log_len(LogObject *self)
{
    return self->n / 4;
}

static int
Log_init(LogObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"batch", "on_full", NULL};
    Py_ssize_t batch;
    PyObject *on_full;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nO", kwlist, &batch, &on_full))
        return -1;
    if (batch < 1) {
        PyErr_SetString(PyExc_ValueError, "batch must be >= 1");
        return -1;
    }
    self->batch = self->puts_left = batch;
    self->n = 0;
    Py_XSETREF(self->on_full, Py_NewRef(on_full));
    return 0;
}

static int
Log_traverse(LogObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->on_full);
    return 0;
}

static int
Log_tp_clear(LogObject *self)
{
    Py_CLEAR(self->on_full);
    return 0;
}

static void
Log_dealloc(LogObject *self)
{
    PyObject_GC_UnTrack(self);
    Log_tp_clear(self);
    PyMem_Free(self->rows);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Log_methods[] = {
    {"arrive", (PyCFunction)(void (*)(void))Log_arrive, METH_FASTCALL, "arrive(item, t): the pusher starts putting item."},
    {"put", (PyCFunction)(void (*)(void))Log_put, METH_FASTCALL,
     "put(item, t, depth): item entered the queue; every `batch` puts calls on_full()."},
    {"get", (PyCFunction)(void (*)(void))Log_get, METH_FASTCALL, "get(item, worker, t, depth): a worker took item."},
    {"done", (PyCFunction)(void (*)(void))Log_done, METH_FASTCALL, "done(item, t): item's service ended."},
    {"take", (PyCFunction)Log_take, METH_NOARGS, "Return the rows as bytes of float64 (kind, item, t, value) and clear."},
    {NULL},
};

static PySequenceMethods Log_as_sequence = {.sq_length = (lenfunc)Log_len};

static PyTypeObject Log_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench._recorder.Log",
    .tp_doc = "Log(batch, on_full): the recorder's row log (see bench/recorder.py).",
    .tp_basicsize = sizeof(LogObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Log_init,
    .tp_traverse = (traverseproc)Log_traverse,
    .tp_clear = (inquiry)Log_tp_clear,
    .tp_dealloc = (destructor)Log_dealloc,
    .tp_methods = Log_methods,
    .tp_as_sequence = &Log_as_sequence,
};

/* -- the module ---------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bench._recorder",
    .m_doc = "Optional C speed-up of bench.recorder: the row log (Log); its Python twin is bench.recorder.PyLog.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__recorder(void)
{
    if (PyType_Ready(&Log_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Log", (PyObject *)&Log_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
