/* Optional C speed-up of the virtual loop (bench.loop); its pure-Python twin is used when this is
 * not built (bench.loop.ACCELERATED says which).
 *
 * Core (bench/loop/cloop.py's VirtualEventLoop): the hot path of the virtual loop. It keeps the virtual
 * clock (integer nanoseconds) and a binary heap of Timer objects ordered by (deadline, scheduling
 * sequence). Its methods are installed on the loop as instance attributes, so asyncio's own code
 * (Task, Future, asyncio.sleep, Queue) calls them without a Python frame:
 *
 *   call_soon / call_later / call_at   same signatures and semantics as asyncio's
 *   time / time_ns                     the virtual clock
 *   run(loop)                          iterations until loop._stopping (see bench/loop/pyloop.py)
 *
 * Each iteration keeps asyncio's order: the callbacks ready at its start run first (FIFO), then the
 * timers that fell due, in (deadline, sequence) order; callbacks scheduled meanwhile wait for the
 * next iteration. bench/loop/pyloop.py holds the pure-Python version of the same loop (the
 * fallback) and bench/loop/reference.py the plain reference loop the tests compare both against.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#define NS 1000000000LL
#define EXACT_LIMIT 9007199254740992LL /* 2**53: int64 <-> double is exact below it */

typedef struct CoreObject CoreObject;

/* -- Handle: a ready callback ------------------------------------------------------------------ */

/* The fields a Handle and a Timer share, first in both: the GC functions below serve both types. */
#define CALLBACK_FIELDS                                                                          \
    PyObject_HEAD                                                                                \
    PyObject *callback; /* NULL once cancelled */                                                \
    PyObject *args;     /* tuple */                                                              \
    PyObject *context;  /* a Context, or None for a sleep's timer (run inline, reads no context) */

typedef struct {
    CALLBACK_FIELDS
} HandleObject;

/* -- Timer: a scheduled callback and its heap entry --------------------------------------------- */

typedef struct {
    CALLBACK_FIELDS
    int64_t when;       /* deadline, ns */
    uint64_t seq;
    CoreObject *core;   /* borrowed; set while the timer is in core's heap */
} TimerObject;

struct CoreObject {
    PyObject_HEAD
    int64_t now;
    PyObject *now_s;   /* cached float of now */
    uint64_t seq;
    TimerObject **heap;
    Py_ssize_t n_heap, cap_heap;
    Py_ssize_t cancelled; /* cancelled timers still in the heap */
    PyObject *ready;      /* the loop's collections.deque */
    PyObject *ready_append, *ready_popleft, *ready_insert;
    PyObject *set_result_unless_cancelled;
    PyObject *to_ns;      /* Python fallback: seconds (any number) -> int ns */
    int closed;
};

static PyTypeObject Handle_Type, Timer_Type, Core_Type;

static PyObject *str_stopping, *str_cancelled, *str_set_result, *str_run, *str_callback_failed,
    *str_external, *str_await_jobs, *str_raise_deadlock, *str_context;

/* -- helpers ---------------------------------------------------------------------------------- */

static PyObject *
ns_to_seconds(int64_t ns)
{
    if (ns <= EXACT_LIMIT && ns >= -EXACT_LIMIT)
        return PyFloat_FromDouble((double)ns / 1e9);
    PyObject *a = PyLong_FromLongLong(ns), *b = PyLong_FromLongLong(NS);
    PyObject *r = (a && b) ? PyNumber_TrueDivide(a, b) : NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

/* round(seconds * 1e9) as Python computes it, saturated to the int64 range (about +-292 years of
 * virtual time: a "sleep for ever" such as sleep(sys.maxsize) waits at the end of time instead of
 * failing); -1 with an exception set on failure (NaN and infinities, as round() refuses them). */
static int
seconds_to_ns(CoreObject *core, PyObject *value, int64_t *out)
{
    int overflow = 0;
    if (PyFloat_Check(value)) {
        double p = PyFloat_AS_DOUBLE(value) * 1e9;
        if (isnan(p)) {
            PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
            return -1;
        }
        if (isinf(PyFloat_AS_DOUBLE(value))) {
            PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
            return -1;
        }
        p = nearbyint(p); /* round half to even, like round() */
        if (p >= 9223372036854775807.0)
            overflow = 1;
        else if (p <= -9223372036854775807.0)
            overflow = -1;
        else
            *out = (int64_t)p;
    }
    else if (PyLong_CheckExact(value)) {
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && __builtin_mul_overflow(v, NS, out))
            overflow = v > 0 ? 1 : -1;
    }
    else {
        PyObject *ns = PyObject_CallOneArg(core->to_ns, value);
        if (ns == NULL)
            return -1;
        long long v = PyLong_AsLongLongAndOverflow(ns, &overflow);
        Py_DECREF(ns);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = v;
    }
    if (overflow)
        *out = overflow > 0 ? INT64_MAX : INT64_MIN;
    return 0;
}

static int
set_now(CoreObject *core, int64_t now)
{
    PyObject *s = ns_to_seconds(now);
    if (s == NULL)
        return -1;
    core->now = now;
    Py_XSETREF(core->now_s, s);
    return 0;
}

/* -- Handle methods ----------------------------------------------------------------------------- */

static void
Handle_clear_fields(HandleObject *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
}

static int
Handle_traverse(HandleObject *h, visitproc visit, void *arg)
{
    Py_VISIT(h->callback);
    Py_VISIT(h->args);
    Py_VISIT(h->context);
    return 0;
}

static int
Handle_tp_clear(HandleObject *h)
{
    Handle_clear_fields(h);
    Py_CLEAR(h->context);
    return 0;
}

static void
Handle_dealloc(HandleObject *h)
{
    PyObject_GC_UnTrack(h);
    Handle_tp_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static HandleObject *
Handle_make(PyObject *callback, PyObject *args, PyObject *context)
{
    HandleObject *h = PyObject_GC_New(HandleObject, &Handle_Type);
    if (h == NULL)
        return NULL;
    h->callback = Py_NewRef(callback);
    h->args = Py_NewRef(args);
    h->context = Py_NewRef(context);
    PyObject_GC_Track(h);
    return h;
}

static PyObject *
Handle_cancel(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    Handle_clear_fields(h);
    Py_RETURN_NONE;
}

static PyObject *
Handle_cancelled(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(h->callback == NULL);
}

static PyObject *
Handle_get_context(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(h->context);
}

static PyObject *
Handle_repr(HandleObject *h)
{
    if (h->callback == NULL)
        return PyUnicode_FromString("<Handle cancelled>");
    return PyUnicode_FromFormat("<Handle %R>", h->callback);
}

static PyObject *
none_getter(PyObject *self, void *closure)
{
    Py_RETURN_NONE;
}

static PyMethodDef Handle_methods[] = {
    {"cancel", (PyCFunction)Handle_cancel, METH_NOARGS, "Cancel the callback; it will not run."},
    {"cancelled", (PyCFunction)Handle_cancelled, METH_NOARGS, "Return True if the callback was cancelled."},
    {"get_context", (PyCFunction)Handle_get_context, METH_NOARGS, "Return the context the callback runs in."},
    {NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"_source_traceback", none_getter, NULL, "None: these handles keep no traceback (debug mode uses asyncio's).", NULL},
    {NULL},
};

static PyTypeObject Handle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench.loop._core.Handle",
    .tp_doc = "A ready callback of the virtual loop, with the public interface of asyncio.Handle.",
    .tp_basicsize = sizeof(HandleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Handle_traverse,
    .tp_clear = (inquiry)Handle_tp_clear,
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_repr = (reprfunc)Handle_repr,
    .tp_methods = Handle_methods,
    .tp_getset = Handle_getset,
};

/* -- Timer methods ------------------------------------------------------------------------------ */

static PyObject *
Timer_cancel(TimerObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->callback != NULL) {
        if (t->core != NULL)
            t->core->cancelled++;
        Py_CLEAR(t->callback);
        Py_CLEAR(t->args);
    }
    Py_RETURN_NONE;
}

static PyObject *
Timer_cancelled(TimerObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(t->callback == NULL);
}

static PyObject *
Timer_get_context(TimerObject *t, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(t->context);
}

static PyObject *
Timer_when(TimerObject *t, PyObject *Py_UNUSED(ignored))
{
    return ns_to_seconds(t->when);
}

static PyObject *
Timer_repr(TimerObject *t)
{
    PyObject *when = ns_to_seconds(t->when);
    if (when == NULL)
        return NULL;
    PyObject *r = t->callback == NULL ? PyUnicode_FromFormat("<TimerHandle when=%R cancelled>", when)
                                      : PyUnicode_FromFormat("<TimerHandle when=%R %R>", when, t->callback);
    Py_DECREF(when);
    return r;
}

static PyMethodDef Timer_methods[] = {
    {"cancel", (PyCFunction)Timer_cancel, METH_NOARGS, "Cancel the timer; it will not run."},
    {"cancelled", (PyCFunction)Timer_cancelled, METH_NOARGS, "Return True if the timer was cancelled."},
    {"get_context", (PyCFunction)Timer_get_context, METH_NOARGS, "Return the context the callback runs in."},
    {"when", (PyCFunction)Timer_when, METH_NOARGS, "Return the scheduled time in (virtual) seconds."},
    {NULL},
};

static PyTypeObject Timer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench.loop._core.Timer",
    .tp_doc = "A timer of the virtual loop, with the public interface of asyncio.TimerHandle.",
    .tp_basicsize = sizeof(TimerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Handle_traverse, /* CALLBACK_FIELDS come first in both */
    .tp_clear = (inquiry)Handle_tp_clear,
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_repr = (reprfunc)Timer_repr,
    .tp_methods = Timer_methods,
    .tp_getset = Handle_getset,
};

/* -- the heap ----------------------------------------------------------------------------------- */

static inline int
earlier(TimerObject *a, TimerObject *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
sift_down(TimerObject **heap, Py_ssize_t n, Py_ssize_t i)
{
    TimerObject *x = heap[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && earlier(heap[c + 1], heap[c]))
            c++;
        if (!earlier(heap[c], x))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

static int
heap_push(CoreObject *core, TimerObject *t)
{
    if (core->n_heap == core->cap_heap) {
        Py_ssize_t cap = core->cap_heap ? core->cap_heap * 2 : 64;
        TimerObject **heap = PyMem_Realloc(core->heap, cap * sizeof(TimerObject *));
        if (heap == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        core->heap = heap;
        core->cap_heap = cap;
    }
    TimerObject **heap = core->heap;
    Py_ssize_t i = core->n_heap++;
    while (i > 0) {
        Py_ssize_t p = (i - 1) / 2;
        if (!earlier(t, heap[p]))
            break;
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = t;
    Py_INCREF(t);
    t->core = core;
    return 0;
}

/* Pop the earliest timer; the caller owns the reference. */
static TimerObject *
heap_pop(CoreObject *core)
{
    TimerObject **heap = core->heap;
    TimerObject *top = heap[0];
    Py_ssize_t n = --core->n_heap;
    if (n > 0) {
        heap[0] = heap[n];
        sift_down(heap, n, 0);
    }
    top->core = NULL;
    return top;
}

/* Drop cancelled timers: all of them when they are many, else those on top. */
static void
drop_cancelled(CoreObject *core)
{
    if (core->cancelled > 64 && core->cancelled * 2 > core->n_heap) {
        Py_ssize_t n = core->n_heap, kept = 0, n_dead = 0;
        TimerObject **dead = PyMem_Malloc(n * sizeof(TimerObject *));
        if (dead != NULL) {
            for (Py_ssize_t i = 0; i < n; i++) {
                TimerObject *t = core->heap[i];
                if (t->callback == NULL) {
                    t->core = NULL;
                    dead[n_dead++] = t;
                }
                else
                    core->heap[kept++] = t;
            }
            core->n_heap = kept;
            for (Py_ssize_t i = kept / 2 - 1; i >= 0; i--)
                sift_down(core->heap, kept, i);
            core->cancelled = 0;
            /* only now: freeing a timer's context can run code that schedules timers */
            for (Py_ssize_t i = 0; i < n_dead; i++)
                Py_DECREF(dead[i]);
            PyMem_Free(dead);
            return;
        }
    }
    while (core->n_heap && core->heap[0]->callback == NULL) {
        Py_DECREF(heap_pop(core));
        core->cancelled--;
    }
}

/* -- Core: scheduling ----------------------------------------------------------------------------- */

/* Split (callback, *args, context=None) from a vectorcall; new references in *callback, *args, *context. */
static int
parse_call(PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t skip, const char *name,
           PyObject **callback, PyObject **args, PyObject **context)
{
    *context = NULL;
    if (kwnames != NULL) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < nk; i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            if (key != str_context && PyUnicode_Compare(key, str_context) != 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", name, key);
                return -1;
            }
            *context = argv[nargs + i];
        }
    }
    if (nargs < skip + 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'callback'", name);
        return -1;
    }
    if (*context == Py_None)
        *context = NULL;
    *callback = argv[skip];
    *args = PyTuple_New(nargs - skip - 1);
    if (*args == NULL)
        return -1;
    for (Py_ssize_t i = skip + 1; i < nargs; i++)
        PyTuple_SET_ITEM(*args, i - skip - 1, Py_NewRef(argv[i]));
    return 0;
}

static int
check_open(CoreObject *core)
{
    if (core->ready_insert == NULL || core->now_s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core.__init__() was not called");
        return -1;
    }
    if (core->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static PyObject *
Core_call_soon(CoreObject *self, PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *callback, *args, *context;
    if (check_open(self) || parse_call(argv, nargs, kwnames, 0, "call_soon", &callback, &args, &context))
        return NULL;
    if (context == NULL) {
        context = PyContext_CopyCurrent();
        if (context == NULL) {
            Py_DECREF(args);
            return NULL;
        }
    }
    else
        Py_INCREF(context);
    HandleObject *h = Handle_make(callback, args, context);
    Py_DECREF(args);
    Py_DECREF(context);
    if (h == NULL)
        return NULL;
    PyObject *r = PyObject_CallOneArg(self->ready_append, (PyObject *)h);
    if (r == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(r);
    return (PyObject *)h;
}

static PyObject *
schedule(CoreObject *self, int64_t when, PyObject *callback, PyObject *args, PyObject *context, int inline_ok)
{
    if (context == NULL) {
        if (inline_ok && callback == self->set_result_unless_cancelled)
            context = Py_NewRef(Py_None); /* a sleep's timer runs inline and reads no context */
        else if ((context = PyContext_CopyCurrent()) == NULL)
            return NULL;
    }
    else
        Py_INCREF(context);
    TimerObject *t = PyObject_GC_New(TimerObject, &Timer_Type);
    if (t == NULL) {
        Py_DECREF(context);
        return NULL;
    }
    t->callback = Py_NewRef(callback);
    t->args = Py_NewRef(args);
    t->context = context;
    t->when = when;
    t->seq = self->seq++;
    t->core = NULL;
    PyObject_GC_Track(t);
    if (heap_push(self, t)) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyObject *
Core_call_later(CoreObject *self, PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *callback, *args, *context;
    int64_t delay, when;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_later() missing required argument 'delay'");
        return NULL;
    }
    if (argv[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "delay must not be None");
        return NULL;
    }
    if (check_open(self) || seconds_to_ns(self, argv[0], &delay))
        return NULL;
    if (delay <= 0)
        when = self->now;
    else if (__builtin_add_overflow(self->now, delay, &when))
        when = INT64_MAX; /* saturated, as in seconds_to_ns */
    if (parse_call(argv, nargs, kwnames, 1, "call_later", &callback, &args, &context))
        return NULL;
    PyObject *r = schedule(self, when, callback, args, context, 1);
    Py_DECREF(args);
    return r;
}

static PyObject *
Core_call_at(CoreObject *self, PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *callback, *args, *context;
    int64_t when;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_at() missing required argument 'when'");
        return NULL;
    }
    if (argv[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "when cannot be None");
        return NULL;
    }
    if (check_open(self) || seconds_to_ns(self, argv[0], &when))
        return NULL;
    if (parse_call(argv, nargs, kwnames, 1, "call_at", &callback, &args, &context))
        return NULL;
    PyObject *r = schedule(self, when, callback, args, context, 0);
    Py_DECREF(args);
    return r;
}

static PyObject *
Core_time(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->now_s == NULL)
        return PyFloat_FromDouble(0.0);
    return Py_NewRef(self->now_s);
}

static PyObject *
Core_time_ns(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(self->now);
}

/* -- Core: running ------------------------------------------------------------------------------- */

/* Call callback(*args) in context (None: the current one); a sleep's timer sets its future inline. */
static PyObject *
invoke(CoreObject *self, PyObject *callback, PyObject *args, PyObject *context)
{
    if (callback == self->set_result_unless_cancelled && PyTuple_GET_SIZE(args) == 2) {
        PyObject *future = PyTuple_GET_ITEM(args, 0);
        PyObject *cancelled = PyObject_CallMethodNoArgs(future, str_cancelled);
        if (cancelled == NULL)
            return NULL;
        int is = PyObject_IsTrue(cancelled);
        Py_DECREF(cancelled);
        if (is < 0)
            return NULL;
        if (is)
            Py_RETURN_NONE;
        return PyObject_CallMethodOneArg(future, str_set_result, PyTuple_GET_ITEM(args, 1));
    }
    if (context == Py_None)
        return PyObject_Call(callback, args, NULL);
    if (PyContext_Enter(context))
        return NULL;
    PyObject *r = PyObject_Call(callback, args, NULL);
    if (PyContext_Exit(context)) {
        Py_XDECREF(r);
        return NULL;
    }
    return r;
}

/* After a callback raised: re-raise SystemExit/KeyboardInterrupt (return -1), else report it
 * through loop._callback_failed (return 0, or -1 if that failed). */
static int
callback_failed(PyObject *loop, PyObject *handle, PyObject *callback, PyObject *args)
{
    PyObject *type, *value, *tb;
    if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
        return -1;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *prev = PyErr_GetHandledException(); /* as in `except BaseException as exc:` */
    PyErr_SetHandledException(value);
    PyObject *r = PyObject_CallMethodObjArgs(loop, str_callback_failed, handle, callback, args, value, NULL);
    PyErr_SetHandledException(prev);
    Py_XDECREF(prev);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int
run_handle(CoreObject *self, PyObject *loop, PyObject *handle)
{
    PyObject *r;
    if (Py_IS_TYPE(handle, &Handle_Type)) {
        HandleObject *h = (HandleObject *)handle;
        if (h->callback == NULL)
            return 0;
        PyObject *callback = Py_NewRef(h->callback), *args = Py_NewRef(h->args);
        r = invoke(self, callback, args, h->context);
        int rc = 0;
        if (r == NULL)
            rc = callback_failed(loop, handle, callback, args);
        else
            Py_DECREF(r);
        Py_DECREF(callback);
        Py_DECREF(args);
        return rc;
    }
    /* one of asyncio's own handles (debug mode, call_soon_threadsafe, selector callbacks) */
    PyObject *cancelled = PyObject_GetAttrString(handle, "_cancelled");
    if (cancelled == NULL)
        return -1;
    int is = PyObject_IsTrue(cancelled);
    Py_DECREF(cancelled);
    if (is)
        return is < 0 ? -1 : 0;
    r = PyObject_CallMethodNoArgs(handle, str_run);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int
run_timer(CoreObject *self, PyObject *loop, TimerObject *t)
{
    if (t->callback == NULL)
        return 0;
    PyObject *callback = Py_NewRef(t->callback), *args = Py_NewRef(t->args);
    PyObject *r = invoke(self, callback, args, t->context);
    int rc = 0;
    if (r == NULL)
        rc = callback_failed(loop, (PyObject *)t, callback, args);
    else
        Py_DECREF(r);
    Py_DECREF(callback);
    Py_DECREF(args);
    return rc;
}

static int
loop_flag(PyObject *loop, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(loop, name);
    if (v == NULL)
        return -1;
    int is = PyObject_IsTrue(v);
    Py_DECREF(v);
    return is;
}

/* Put timers due[from:n] back first in line after the `after` ready callbacks not yet run, as
 * handles, so that a loop left by an exception resumes in the same order. */
static void
requeue(CoreObject *self, TimerObject **due, Py_ssize_t from, Py_ssize_t n, Py_ssize_t after)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    for (Py_ssize_t k = from; k < n; k++) {
        TimerObject *t = due[k];
        if (t->callback == NULL)
            continue;
        PyObject *context = t->context != Py_None ? Py_NewRef(t->context) : PyContext_CopyCurrent();
        if (context == NULL)
            break;
        HandleObject *h = Handle_make(t->callback, t->args, context);
        Py_DECREF(context);
        if (h == NULL)
            break;
        PyObject *r = PyObject_CallFunction(self->ready_insert, "nO", after++, (PyObject *)h);
        Py_DECREF(h);
        if (r == NULL)
            break;
        Py_DECREF(r);
    }
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

static PyObject *
Core_run(CoreObject *self, PyObject *loop)
{
    TimerObject **due = NULL;
    Py_ssize_t cap_due = 0;
    PyObject *result = NULL;
    if (self->ready_insert == NULL || self->now_s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core.__init__() was not called");
        return NULL;
    }
    for (;;) {
        Py_ssize_t n = PyObject_Length(self->ready), n_due = 0;
        if (n < 0)
            goto done;
        if (n == 0) {
            /* Idle: drop cancelled timers; while executor jobs are in flight, let the loop's
             * _await_jobs (bench/loop/jobs.py: the rule, shared by every loop) wait until a callback
             * is ready or every job waits on the loop; then move the clock to the next timer, or
             * raise Deadlock when there is none. */
            if (self->n_heap && (self->heap[0]->callback == NULL || self->cancelled > 64))
                drop_cancelled(self);
            int stopping = loop_flag(loop, str_stopping);
            if (stopping < 0)
                goto done;
            if (!stopping) {
                int external = loop_flag(loop, str_external);
                if (external < 0)
                    goto done;
                if (external) {
                    PyObject *r = PyObject_CallMethodNoArgs(loop, str_await_jobs);
                    if (r == NULL)
                        goto done;
                    Py_DECREF(r);
                    if ((n = PyObject_Length(self->ready)) < 0)
                        goto done;
                    if (n == 0 && self->n_heap && self->heap[0]->callback == NULL)
                        drop_cancelled(self); /* _await_jobs may cancel the timer of a job's wait */
                }
                if (n == 0) {
                    if (self->n_heap) {
                        if (self->heap[0]->when > self->now && set_now(self, self->heap[0]->when))
                            goto done;
                    }
                    else {
                        PyObject *r = PyObject_CallMethodNoArgs(loop, str_raise_deadlock);
                        if (r != NULL) { /* it should have raised */
                            Py_DECREF(r);
                            PyErr_SetString(PyExc_RuntimeError, "deadlock: _raise_deadlock() did not raise");
                        }
                        goto done;
                    }
                }
            }
        }
        /* pop the timers that fell due, in (deadline, sequence) order */
        while (self->n_heap && self->heap[0]->when <= self->now) {
            TimerObject *t = heap_pop(self);
            if (t->callback == NULL) {
                self->cancelled--;
                Py_DECREF(t);
                continue;
            }
            if (n_due == cap_due) {
                cap_due = cap_due ? cap_due * 2 : 16;
                TimerObject **grown = PyMem_Realloc(due, cap_due * sizeof(TimerObject *));
                if (grown == NULL) {
                    /* put them back (the heap has room: they were just popped) and fail */
                    heap_push(self, t);
                    Py_DECREF(t);
                    for (Py_ssize_t k = 0; k < n_due; k++)
                        heap_push(self, due[k]);
                    PyErr_NoMemory();
                    goto drop_due;
                }
                due = grown;
            }
            due[n_due++] = t;
        }
        for (Py_ssize_t left = n; left > 0; left--) {
            PyObject *handle = PyObject_CallNoArgs(self->ready_popleft);
            if (handle == NULL || run_handle(self, loop, handle)) {
                Py_XDECREF(handle);
                requeue(self, due, 0, n_due, left - 1);
                goto drop_due;
            }
            Py_DECREF(handle);
        }
        for (Py_ssize_t k = 0; k < n_due; k++) {
            if (run_timer(self, loop, due[k])) {
                requeue(self, due, k + 1, n_due, 0);
                goto drop_due;
            }
        }
        for (Py_ssize_t k = 0; k < n_due; k++)
            Py_DECREF(due[k]);
        n_due = 0;
        int stopping = loop_flag(loop, str_stopping);
        if (stopping < 0)
            goto done;
        if (stopping) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        continue;
    drop_due:
        for (Py_ssize_t k = 0; k < n_due; k++)
            Py_DECREF(due[k]);
        goto done;
    }
done:
    PyMem_Free(due);
    return result;
}

/* -- Core: inspection and life cycle ---------------------------------------------------------------- */

static PyObject *
Core_timers(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(self->n_heap);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->n_heap; i++)
        PyList_SET_ITEM(list, i, Py_NewRef((PyObject *)self->heap[i]));
    return list;
}

static PyObject *
Core_drop_cancelled(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    drop_cancelled(self);
    Py_RETURN_NONE;
}

static void
clear_heap(CoreObject *self)
{
    TimerObject **heap = self->heap;
    Py_ssize_t n = self->n_heap;
    self->heap = NULL;
    self->n_heap = self->cap_heap = 0;
    self->cancelled = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        heap[i]->core = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(heap[i]);
    PyMem_Free(heap);
}

static PyObject *
Core_close(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    clear_heap(self);
    Py_RETURN_NONE;
}

static PyObject *
Core_get_cancelled(CoreObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->cancelled);
}

static PyObject *
Core_get_pending(CoreObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->n_heap);
}

static PyObject *
Core_get_now_ns(CoreObject *self, void *closure)
{
    return PyLong_FromLongLong(self->now);
}

static int
Core_init(CoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ready", "start_ns", "set_result_unless_cancelled", "to_ns", NULL};
    PyObject *ready, *set_result, *to_ns;
    long long start;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OLOO", kwlist, &ready, &start, &set_result, &to_ns))
        return -1;
    Py_XSETREF(self->ready, Py_NewRef(ready));
    Py_XSETREF(self->ready_append, PyObject_GetAttrString(ready, "append"));
    Py_XSETREF(self->ready_popleft, PyObject_GetAttrString(ready, "popleft"));
    Py_XSETREF(self->ready_insert, PyObject_GetAttrString(ready, "insert"));
    Py_XSETREF(self->set_result_unless_cancelled, Py_NewRef(set_result));
    Py_XSETREF(self->to_ns, Py_NewRef(to_ns));
    if (!self->ready_append || !self->ready_popleft || !self->ready_insert)
        return -1;
    return set_now(self, start);
}

static int
Core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ready);
    Py_VISIT(self->ready_append);
    Py_VISIT(self->ready_popleft);
    Py_VISIT(self->ready_insert);
    Py_VISIT(self->set_result_unless_cancelled);
    Py_VISIT(self->to_ns);
    for (Py_ssize_t i = 0; i < self->n_heap; i++)
        Py_VISIT(self->heap[i]);
    return 0;
}

static int
Core_tp_clear(CoreObject *self)
{
    clear_heap(self);
    Py_CLEAR(self->ready);
    Py_CLEAR(self->ready_append);
    Py_CLEAR(self->ready_popleft);
    Py_CLEAR(self->ready_insert);
    Py_CLEAR(self->set_result_unless_cancelled);
    Py_CLEAR(self->to_ns);
    return 0;
}

static void
Core_dealloc(CoreObject *self)
{
    PyObject_GC_UnTrack(self);
    Core_tp_clear(self);
    Py_CLEAR(self->now_s);
    PyMem_Free(self->heap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Core_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))Core_call_soon, METH_FASTCALL | METH_KEYWORDS,
     "call_soon(callback, *args, context=None): like asyncio's; returns a Handle."},
    {"call_later", (PyCFunction)(void (*)(void))Core_call_later, METH_FASTCALL | METH_KEYWORDS,
     "call_later(delay, callback, *args, context=None): like asyncio's, in exact integer nanoseconds."},
    {"call_at", (PyCFunction)(void (*)(void))Core_call_at, METH_FASTCALL | METH_KEYWORDS,
     "call_at(when, callback, *args, context=None): like asyncio's."},
    {"time", (PyCFunction)Core_time, METH_NOARGS, "Return the virtual time in seconds."},
    {"time_ns", (PyCFunction)Core_time_ns, METH_NOARGS, "Return the virtual time in integer nanoseconds."},
    {"run", (PyCFunction)Core_run, METH_O, "run(loop): run iterations until loop._stopping is set."},
    {"timers", (PyCFunction)Core_timers, METH_NOARGS, "Return the timers in the heap (heap order)."},
    {"drop_cancelled", (PyCFunction)Core_drop_cancelled, METH_NOARGS, "Drop cancelled timers from the heap."},
    {"close", (PyCFunction)Core_close, METH_NOARGS, "Refuse new callbacks and drop every timer."},
    {NULL},
};

static PyGetSetDef Core_getset[] = {
    {"cancelled", (getter)Core_get_cancelled, NULL, "Cancelled timers still in the heap.", NULL},
    {"now_ns", (getter)Core_get_now_ns, NULL, "The virtual time in integer nanoseconds.", NULL},
    {"pending", (getter)Core_get_pending, NULL, "Timers in the heap, cancelled ones included.", NULL},
    {NULL},
};

static PyTypeObject Core_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench.loop._core.Core",
    .tp_doc = "Core(ready, start_ns, set_result_unless_cancelled, to_ns): the clock, the timer heap and "
              "the run loop of bench.loop.VirtualEventLoop.",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_tp_clear,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

/* -- the module ---------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bench.loop._core",
    .m_doc = "Optional C speed-up of the virtual loop's core (bench.loop); its Python twin is PyVirtualEventLoop.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__core(void)
{
#define INTERN(var, text)                                   \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;
    INTERN(str_stopping, "_stopping");
    INTERN(str_cancelled, "cancelled");
    INTERN(str_set_result, "set_result");
    INTERN(str_run, "_run");
    INTERN(str_callback_failed, "_callback_failed");
    INTERN(str_external, "_external");
    INTERN(str_await_jobs, "_await_jobs");
    INTERN(str_raise_deadlock, "_raise_deadlock");
    INTERN(str_context, "context");
#undef INTERN
    if (PyType_Ready(&Handle_Type) < 0 || PyType_Ready(&Timer_Type) < 0 || PyType_Ready(&Core_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&Core_Type) < 0 ||
        PyModule_AddObjectRef(m, "Handle", (PyObject *)&Handle_Type) < 0 ||
        PyModule_AddObjectRef(m, "Timer", (PyObject *)&Timer_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
