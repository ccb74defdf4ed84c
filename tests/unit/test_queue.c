/*
 * Unit tests of the in-process queue (src/core/queue.h) and the batches
 * that feed it (src/core/job.h): all-or-nothing push, FIFO order across
 * the ring's wrap, close waking a blocked pop, draining after close.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "core/job.h"
#include "core/queue.h"

/* ------------------------------------------------------------ helpers */

#define NJOBS 8

static struct job jobs[NJOBS];

static struct job **ptrs(size_t from, size_t n, struct job **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = &jobs[from + i];
    return out;
}

static int push(struct queue *q, size_t from, size_t n)
{
    struct job *p[NJOBS];
    return q->ops->push(q->self, ptrs(from, n, p), n, 0);
}

static int setup(void **state)
{
    for (size_t i = 0; i < NJOBS; i++) {
        jobs[i].batch = NULL;
        jobs[i].index = i;
    }
    *state = queue_mem_new(4);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    queue_free(*state);
    return 0;
}

/* ------------------------------------------------------------- tests */

static void test_fifo(void **state)
{
    struct queue *q = *state;
    assert_int_equal(push(q, 0, 2), 0);
    assert_int_equal(push(q, 2, 1), 0);
    assert_int_equal(q->ops->depth(q->self), 3);
    for (size_t i = 0; i < 3; i++)
        assert_ptr_equal(q->ops->pop(q->self), &jobs[i]);
    assert_int_equal(q->ops->depth(q->self), 0);
    assert_null(q->ops->try_pop(q->self));
}

static void test_fifo_across_wrap(void **state)
{
    struct queue *q = *state;
    /* Move the ring's head so later pushes wrap around its end. */
    assert_int_equal(push(q, 0, 3), 0);
    assert_ptr_equal(q->ops->pop(q->self), &jobs[0]);
    assert_ptr_equal(q->ops->pop(q->self), &jobs[1]);
    assert_int_equal(push(q, 3, 3), 0); /* 2 then 3,4,5: full */
    assert_int_equal(q->ops->depth(q->self), 4);
    for (size_t i = 2; i < 6; i++)
        assert_ptr_equal(q->ops->try_pop(q->self), &jobs[i]);
    assert_null(q->ops->try_pop(q->self));
}

static void test_push_all_or_nothing(void **state)
{
    struct queue *q = *state;
    assert_int_equal(push(q, 0, 3), 0);
    /* Two do not fit in the one slot left: none is queued. */
    assert_int_equal(push(q, 3, 2), BG_EFULL);
    assert_int_equal(q->ops->depth(q->self), 3);
    /* More than the whole capacity never fits. */
    assert_int_equal(push(q, 0, 5), BG_EFULL);
    assert_int_equal(q->ops->depth(q->self), 3);
    /* Exactly the room left fits. */
    assert_int_equal(push(q, 3, 1), 0);
    assert_int_equal(push(q, 4, 1), BG_EFULL);
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(q->ops->try_pop(q->self), &jobs[i]);
    assert_null(q->ops->try_pop(q->self));
}

static void test_push_whole_capacity(void **state)
{
    struct queue *q = *state;
    assert_int_equal(push(q, 0, 4), 0);
    assert_int_equal(q->ops->depth(q->self), 4);
    assert_int_equal(push(q, 4, 1), BG_EFULL);
}

struct popper {
    struct queue *q;
    struct job *got;
    int returned;
    pthread_mutex_t lock;
};

static void *pop_thread(void *arg)
{
    struct popper *p = arg;
    struct job *j = p->q->ops->pop(p->q->self);
    pthread_mutex_lock(&p->lock);
    p->got = j;
    p->returned = 1;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int popper_returned(struct popper *p)
{
    pthread_mutex_lock(&p->lock);
    int r = p->returned;
    pthread_mutex_unlock(&p->lock);
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Within 5 s, or the process ends: the queue cannot be freed (nor the
 * test go on) under a thread still blocked in it. */
static void wait_returned(struct popper *p)
{
    for (int i = 0; i < 500 && !popper_returned(p); i++)
        sleep_ms(10);
    if (!popper_returned(p)) {
        print_error("pop is still blocked 5 s later\n");
        exit(1);
    }
}

static void test_close_wakes_blocked_pop(void **state)
{
    struct queue *q = *state;
    struct popper p = {q, &jobs[7], 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
    sleep_ms(100);
    assert_false(popper_returned(&p)); /* blocked: the queue is empty */
    q->ops->close(q->self);
    wait_returned(&p);
    pthread_join(t, NULL);
    assert_null(p.got);
    pthread_mutex_destroy(&p.lock);
}

static void test_push_wakes_blocked_pop(void **state)
{
    struct queue *q = *state;
    struct popper p = {q, NULL, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
    sleep_ms(50);
    assert_int_equal(push(q, 5, 1), 0);
    wait_returned(&p);
    pthread_join(t, NULL);
    assert_ptr_equal(p.got, &jobs[5]);
    pthread_mutex_destroy(&p.lock);
}

static void test_drain_after_close(void **state)
{
    struct queue *q = *state;
    assert_int_equal(push(q, 0, 3), 0);
    q->ops->close(q->self);
    /* Closed: nothing new, but what waits is still handed out in order. */
    assert_int_equal(push(q, 3, 1), BG_ECLOSED);
    assert_int_equal(q->ops->depth(q->self), 3);
    assert_ptr_equal(q->ops->try_pop(q->self), &jobs[0]);
    assert_ptr_equal(q->ops->pop(q->self), &jobs[1]); /* does not block */
    assert_ptr_equal(q->ops->try_pop(q->self), &jobs[2]);
    assert_null(q->ops->try_pop(q->self));
    assert_null(q->ops->pop(q->self)); /* closed and empty: NULL, no block */
}

static void test_push_after_close(void **state)
{
    struct queue *q = *state;
    q->ops->close(q->self);
    assert_int_equal(push(q, 0, 1), BG_ECLOSED);
    /* ECLOSED wins over EFULL: a closing service says so. */
    assert_int_equal(push(q, 0, 5), BG_ECLOSED);
    assert_int_equal(q->ops->depth(q->self), 0);
}

/* Batches: N jobs pointing back at one batch, queued as one request. */
static void test_batch_jobs(void **state)
{
    struct queue *q = *state;
    struct run_spec spec;
    memset(&spec, 0, sizeof spec);
    struct batch *b = batch_new(&spec, 3, "req-1");
    assert_non_null(b);
    assert_int_equal(b->count, 3);
    assert_string_equal(b->request_id, "req-1");
    struct job *p[3];
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(b->jobs[i].batch, b);
        assert_int_equal(b->jobs[i].index, i);
        assert_int_equal(b->results[i].status, RUN_INTERNAL_ERROR);
        batch_ref(b); /* the reference each queued job holds */
        p[i] = &b->jobs[i];
    }
    assert_int_equal(q->ops->push(q->self, p, 3, 0), 0);
    for (size_t i = 0; i < 3; i++) {
        struct job *j = q->ops->try_pop(q->self);
        assert_ptr_equal(j, &b->jobs[i]);
        batch_job_fail(j, "shutting down");
    }
    assert_int_equal(atomic_load(&b->remaining), 0);
    assert_string_equal(b->results[2].message, "shutting down");
    batch_unref(b);
}

static void test_batch_too_big_for_queue(void **state)
{
    struct queue *q = *state;
    struct run_spec spec;
    memset(&spec, 0, sizeof spec);
    struct batch *b = batch_new(&spec, 5, "req-2");
    assert_non_null(b);
    struct job *p[5];
    for (size_t i = 0; i < 5; i++)
        p[i] = &b->jobs[i];
    assert_int_equal(q->ops->push(q->self, p, 5, 0), BG_EFULL);
    assert_int_equal(q->ops->depth(q->self), 0);
    batch_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_across_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_whole_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_wakes_blocked_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_wakes_blocked_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_too_big_for_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
