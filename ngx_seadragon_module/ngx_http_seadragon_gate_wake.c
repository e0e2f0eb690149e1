
/*
 * Copyright (C) The Seadragon authors
 *
 * How a worker that frees a slot wakes the worker whose request is next:
 * one pipe per worker, made by the master before it forks the workers of
 * a configuration, so that every worker of that generation holds the
 * write ends of all of them.  A worker watches the read end of its own.
 */


#include "ngx_http_seadragon_module.h"

#include <ngx_channel.h>


static void ngx_http_seadragon_gate_wake_read(ngx_event_t *ev);
static void ngx_http_seadragon_gate_wake_close(void *data);


/* the wake-up pipes of this generation of workers: [2 * i] reads, +1 writes */
static ngx_fd_t     *ngx_http_seadragon_wake_fds;
static ngx_uint_t    ngx_http_seadragon_wake_n;

uint64_t             ngx_http_seadragon_generation;


/* whether a worker of this generation has a pipe to be woken through */

ngx_uint_t
ngx_http_seadragon_gate_wakeable(ngx_uint_t worker)
{
    return worker < ngx_http_seadragon_wake_n;
}


/*
 * One byte down the pipe of another worker of this generation: its read
 * handler runs a dispatch there.  A full pipe already holds a wake-up.
 */

void
ngx_http_seadragon_gate_wake_worker(ngx_int_t worker)
{
    ssize_t  n;

    if (worker < 0
        || (ngx_uint_t) worker == ngx_worker
        || ngx_http_seadragon_wake_fds == NULL)
    {
        return;
    }

    n = write(ngx_http_seadragon_wake_fds[2 * worker + 1], "!", 1);

    if (n == -1 && ngx_errno != NGX_EAGAIN) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "seadragon could not wake worker %i", worker);
    }
}


static void
ngx_http_seadragon_gate_wake_read(ngx_event_t *ev)
{
    u_char             buf[64];
    ngx_connection_t  *c;

    c = ev->data;

    while (read(c->fd, buf, sizeof(buf)) > 0) {
        /* void */
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "seadragon woken by another worker");

    ngx_http_seadragon_gate_woken();
}


/* fds[-1] holds how many descriptors follow: a reload may change it */

static void
ngx_http_seadragon_gate_wake_close(void *data)
{
    ngx_fd_t   *fds = data;

    ngx_int_t  i;

    for (i = 0; i < fds[-1]; i++) {
        if (fds[i] != NGX_INVALID_FILE) {
            (void) close(fds[i]);
        }
    }

    if (fds == ngx_http_seadragon_wake_fds) {
        ngx_http_seadragon_wake_fds = NULL;
        ngx_http_seadragon_wake_n = 0;
    }
}


/*
 * In the master, before the workers of this configuration are forked: one
 * non-blocking pipe per worker, closed with the cycle.  Each generation has
 * its own, and an entry records the generation of its owner.
 */

ngx_int_t
ngx_http_seadragon_gate_init_module(ngx_cycle_t *cycle)
{
    int                              fd[2];
    ngx_uint_t                       i, n;
    ngx_fd_t                        *fds;
    ngx_core_conf_t                 *ccf;
    ngx_pool_cleanup_t              *cln;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->zones.nelts == 0 || ngx_test_config) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = (ccf->master && ccf->worker_processes > 0) ? ccf->worker_processes
                                                    : 1;

    fds = ngx_palloc(cycle->pool, (2 * n + 1) * sizeof(ngx_fd_t));
    if (fds == NULL) {
        return NGX_ERROR;
    }

    *fds++ = (ngx_fd_t) (2 * n);

    for (i = 0; i < 2 * n; i++) {
        fds[i] = NGX_INVALID_FILE;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_seadragon_gate_wake_close;
    cln->data = fds;

    for (i = 0; i < n; i++) {
        if (pipe(fd) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "seadragon: pipe() failed");
            return NGX_ERROR;
        }

        fds[2 * i] = fd[0];
        fds[2 * i + 1] = fd[1];

        if (ngx_nonblocking(fd[0]) == -1 || ngx_nonblocking(fd[1]) == -1
            || fcntl(fd[0], F_SETFD, FD_CLOEXEC) == -1
            || fcntl(fd[1], F_SETFD, FD_CLOEXEC) == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "seadragon: could not set up a wake-up pipe");
            return NGX_ERROR;
        }
    }

    ngx_http_seadragon_wake_fds = fds;
    ngx_http_seadragon_wake_n = n;
    ngx_http_seadragon_generation = ((uint64_t) ngx_time() << 24)
                                    ^ (uint64_t) ngx_random()
                                    ^ ((uint64_t) ngx_pid << 40);

    return NGX_OK;
}


/* in a worker: its own pipe watched; without it, the tick alone admits */

void
ngx_http_seadragon_gate_wake_watch(ngx_cycle_t *cycle)
{
    if (ngx_http_seadragon_wake_fds && ngx_worker < ngx_http_seadragon_wake_n
        && ngx_add_channel_event(cycle,
                                 ngx_http_seadragon_wake_fds[2 * ngx_worker],
                                 NGX_READ_EVENT,
                                 ngx_http_seadragon_gate_wake_read)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "seadragon could not watch its wake-up pipe; "
                      "other workers' slots reach it on its tick only");
        ngx_http_seadragon_generation = 0;
    }
}
