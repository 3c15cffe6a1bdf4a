/* Optional C speed-up of bench/recurrence.py: the earliest-free-server loops of the recurrence
 * engine, assign() (unbounded queue) and bounded(). Their pure-Python twins are methods of
 * bench.recurrence's engine, used when this extension is not built (bench.recurrence.ACCELERATED).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* -- assign: the earliest-free-server recurrence of bench/recurrence.py --------------------------------- */

static int
int64_buffer(PyObject *o, Py_buffer *view, int writable, const char *name)
{
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)))
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    if (view->itemsize != 8 || view->ndim != 1 || (strcmp(f, "l") && strcmp(f, "q"))) {
        PyErr_Format(PyExc_TypeError, "assign(): %s must be a 1-d int64 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static inline int
sooner(const int64_t *free, Py_ssize_t a, Py_ssize_t b)
{
    return free[a] < free[b] || (free[a] == free[b] && a < b);
}

static void
server_sift(Py_ssize_t *heap, Py_ssize_t n, const int64_t *free, Py_ssize_t i)
{
    Py_ssize_t x = heap[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && sooner(free, heap[c + 1], heap[c]))
            c++;
        if (!sooner(free, heap[c], x))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

/* The workers 0..c-1 as a heap ordered by (free time, index); NULL with MemoryError set. */
static Py_ssize_t *
server_heap(const int64_t *free, Py_ssize_t c)
{
    Py_ssize_t *heap = PyMem_Malloc(c * sizeof(Py_ssize_t));
    if (heap == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t w = 0; w < c; w++)
        heap[w] = w;
    for (Py_ssize_t i = c / 2 - 1; i >= 0; i--)
        server_sift(heap, c, free, i);
    return heap;
}

static PyObject *
recurrence_assign(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    static const char *names[] = {"t_put", "service", "free", "t_get", "worker"};
    Py_buffer b[5];
    int got = 0;
    PyObject *result = NULL;
    Py_ssize_t *heap = NULL;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "assign(t_put, service, free, t_get, worker) takes 5 arguments");
        return NULL;
    }
    for (; got < 5; got++)
        if (int64_buffer(argv[got], &b[got], got >= 2, names[got]))
            goto done;
    Py_ssize_t n = b[0].shape[0], c = b[2].shape[0];
    if (b[1].shape[0] != n || b[3].shape[0] != n || b[4].shape[0] != n || c < 1) {
        PyErr_SetString(PyExc_ValueError, "assign(): t_put, service, t_get and worker need one length, free >= 1");
        goto done;
    }
    const int64_t *t_put = b[0].buf, *service = b[1].buf;
    int64_t *free = b[2].buf, *t_get = b[3].buf, *worker = b[4].buf;
    if ((heap = server_heap(free, c)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t w = heap[0];
        int64_t g = t_put[i] > free[w] ? t_put[i] : free[w];
        t_get[i] = g;
        worker[i] = w;
        free[w] = g + service[i];
        server_sift(heap, c, free, 0);
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(heap);
    while (got-- > 0)
        PyBuffer_Release(&b[got]);
    return result;
}

/* bounded(a, service, free, ring, state, t_arrive, t_put, t_get, worker) -> (k, stop): the same
 * with a queue of capacity m = len(ring): item i enters the queue (t_put) only once item i - m has
 * been taken, and the pusher's next arrival counts from its put. state = [next arrival, next item,
 * limit or -1]; items whose arrival or put would reach the limit are not run (stop = True). */
static PyObject *
recurrence_bounded(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    static const char *names[] = {"a", "service", "free", "ring", "state", "t_arrive", "t_put", "t_get", "worker"};
    Py_buffer b[9];
    int got = 0, stop = 0;
    PyObject *result = NULL;
    Py_ssize_t *heap = NULL, k = 0;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "bounded(a, service, free, ring, state, t_arrive, t_put, t_get, worker) takes 9 arguments");
        return NULL;
    }
    for (; got < 9; got++)
        if (int64_buffer(argv[got], &b[got], got >= 2, names[got]))
            goto done;
    Py_ssize_t n = b[1].shape[0], c = b[2].shape[0], m = b[3].shape[0];
    if (b[0].shape[0] != n || b[4].shape[0] != 3 || c < 1 || m < 1 || b[5].shape[0] < n || b[6].shape[0] < n ||
        b[7].shape[0] < n || b[8].shape[0] < n) {
        PyErr_SetString(PyExc_ValueError, "bounded(): inconsistent lengths");
        goto done;
    }
    const int64_t *a = b[0].buf, *service = b[1].buf;
    int64_t *free = b[2].buf, *ring = b[3].buf, *state = b[4].buf;
    int64_t *t_arrive = b[5].buf, *t_put = b[6].buf, *t_get = b[7].buf, *worker = b[8].buf;
    int64_t next = state[0], i = state[1], limit = state[2];
    if ((heap = server_heap(free, c)) == NULL)
        goto done;
    for (; k < n; k++) {
        if (limit >= 0 && next >= limit) {
            stop = 1;
            break;
        }
        Py_ssize_t slot = (Py_ssize_t)(i % m);
        int64_t p = next;
        if (i >= m && ring[slot] > p)
            p = ring[slot];
        if (limit >= 0 && p >= limit) {
            stop = 1; /* the pusher is blocked in put when time runs out: dropped */
            break;
        }
        Py_ssize_t w = heap[0];
        int64_t g = p > free[w] ? p : free[w];
        t_arrive[k] = next;
        t_put[k] = p;
        t_get[k] = g;
        worker[k] = w;
        free[w] = g + service[k];
        server_sift(heap, c, free, 0);
        ring[slot] = g;
        next = p + a[k];
        i++;
    }
    state[0] = next;
    state[1] = i;
    result = Py_BuildValue("nO", k, stop ? Py_True : Py_False);
done:
    PyMem_Free(heap);
    while (got-- > 0)
        PyBuffer_Release(&b[got]);
    return result;
}

static PyMethodDef module_methods[] = {
    {"assign", (PyCFunction)(void (*)(void))recurrence_assign, METH_FASTCALL,
     "assign(t_put, service, free, t_get, worker): FIFO G/G/c in int64 ns. Each item in turn goes to "
     "the worker free earliest (ties: the lowest index); fills t_get and worker, updates free."},
    {"bounded", (PyCFunction)(void (*)(void))recurrence_bounded, METH_FASTCALL,
     "bounded(a, service, free, ring, state, t_arrive, t_put, t_get, worker) -> (k, stop): the same "
     "with a queue of capacity len(ring), where a blocked put delays the pusher."},
    {NULL},
};

/* -- the module ---------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bench._recurrence",
    .m_doc = "Optional C speed-up of bench.recurrence: the earliest-free-server loops assign() and bounded(); "
             "the engine has Python twins of both.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__recurrence(void)
{
    return PyModule_Create(&module);
}
