
/*
 * Copyright (C) The Seadragon authors
 *
 * A request's work in nginx's thread pool (issue 16): the argon2id hash
 * of a login's verify and of the admin API's new passwords, which cost
 * tens of milliseconds and 64 MiB by design and so never run in the
 * worker.
 *
 * ngx_http_seadragon_task_post() posts work(data) to the pool; the
 * request waits as nginx's own thread operations make one wait
 * (ngx_http_cache_thread_handler()): r->main->blocked, so that
 * ngx_http_close_request() frees nothing while the task runs and the
 * request and its pool outlive it whatever the client does; r->aio; a
 * watchdog timer that also keeps a worker shutting down alive until the
 * answer is out; ngx_http_test_reading() to notice a client that leaves.
 * The task's event, back in the worker, resumes the request through its
 * write handler (or, from 1.25.4, the connection's when nginx terminated
 * it), and done(r, data) makes the answer the request is finalized with;
 * a client that left gets none (499).
 */


#include "ngx_http_seadragon_module.h"


/*
 * thread_pool=NAME of seadragon_auth and seadragon_admin: the pool's name
 * into *name (nginx's ngx_thread_pool_add() says if it is unknown).
 */

ngx_int_t
ngx_http_seadragon_task_pool_name(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name)
{
    name->data = value->data + sizeof("thread_pool=") - 1;
    name->len = value->len - (sizeof("thread_pool=") - 1);

    if (name->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": thread_pool= names a "
                           "pool of \"thread_pool NAME threads=N;\" (or "
                           "\"default\")", value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


#if (NGX_THREADS)

/* as nginx's aio: a task this late is logged, the worker kept alive */
#define NGX_HTTP_SEADRAGON_TASK_TIMEOUT  60000


typedef struct {
    ngx_http_request_t              *request;
    ngx_http_seadragon_task_work_pt  work;
    ngx_http_seadragon_task_done_pt  done;
    void                            *data;
    unsigned                         finished:1;  /* the thread is done */
    unsigned                         answered:1;
} ngx_http_seadragon_task_t;


static void ngx_http_seadragon_task_run(void *data, ngx_log_t *log);
static void ngx_http_seadragon_task_event(ngx_event_t *ev);
static void ngx_http_seadragon_task_resume(ngx_http_request_t *r);


/*
 * NGX_DONE: the task runs and the request waits for it (the caller
 * returns NGX_DONE and finalizes nothing); NGX_BUSY: the pool's queue is
 * full, the caller answers; NGX_ERROR: no memory.  "data" is read and
 * written by work() in the thread and by nothing else until done() runs.
 */

ngx_int_t
ngx_http_seadragon_task_post(ngx_http_request_t *r, ngx_thread_pool_t *pool,
    ngx_http_seadragon_task_work_pt work, ngx_http_seadragon_task_done_pt done,
    void *data)
{
    ngx_thread_task_t          *task;
    ngx_http_seadragon_ctx_t   *ctx;
    ngx_http_seadragon_task_t  *t;

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_seadragon_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;

    t->request = r;
    t->work = work;
    t->done = done;
    t->data = data;

    task->handler = ngx_http_seadragon_task_run;
    task->event.data = t;
    task->event.handler = ngx_http_seadragon_task_event;
    task->event.log = r->connection->log;

    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        return NGX_BUSY;
    }

    ngx_add_timer(&task->event, NGX_HTTP_SEADRAGON_TASK_TIMEOUT);

    ctx->auth = t;

    r->main->blocked++;
    r->aio = 1;

    /*
     * A client that leaves is noticed at once: nginx terminates the
     * request, which, blocked, is only marked (its finalizer as the write
     * handler); when the task is done it is closed with no answer.
     */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_seadragon_task_resume;

    return NGX_DONE;
}


/* in a thread of the pool: only the task's data */

static void
ngx_http_seadragon_task_run(void *data, ngx_log_t *log)
{
    ngx_http_seadragon_task_t  *t = data;

    t->work(t->data);
}


/* back in the worker: as ngx_http_cache_thread_event_handler() */

static void
ngx_http_seadragon_task_event(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_seadragon_task_t  *t;

    t = ev->data;
    r = t->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "seadragon auth: a password hash took over %d ms",
                      NGX_HTTP_SEADRAGON_TASK_TIMEOUT);
        ev->timedout = 0;
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    t->finished = 1;

    r->main->blocked--;
    r->aio = 0;

#if (nginx_version >= 1025004)
    if (r->main->terminated) {
        /* as nginx's own: the connection's handler ends the request */
        c->write->handler(c->write);
        return;
    }
#endif

    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


/*
 * The request's write handler while its task runs: a write event before
 * the task is done does nothing.  Before 1.25.4, a request terminated
 * meanwhile has nginx's finalizer here instead.
 */

static void
ngx_http_seadragon_task_resume(ngx_http_request_t *r)
{
    ngx_http_seadragon_ctx_t   *ctx;
    ngx_http_seadragon_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);
    t = ctx ? ctx->auth : NULL;

    if (t == NULL || !t->finished || t->answered) {
        return;
    }

    t->answered = 1;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    if (r->connection->error) {
        /* the client left: no answer, nothing done in its name */
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    ngx_http_finalize_request(r, t->done(r, t->data));
}

#endif /* NGX_THREADS */
