
/*
 * Copyright (C) The Seadragon authors
 *
 * The gate's body filter: the slot is given back at the answer's last
 * byte, or earlier when a client stops reading while it holds the model
 * (the stall watch).  It is the module's body filter in nginx's chain
 * (registered by ngx_http_seadragon_response_init()); what goes down the
 * chain passes through ngx_http_seadragon_body_replace(), the error
 * output, first.  Each buffer of an answer whose tokens are counted is
 * read by ngx_http_seadragon_usage_parse() before that, as it is.
 */


#include "ngx_http_seadragon_module.h"

#if (NGX_LINUX)
#include <sys/ioctl.h>
#endif


/* output the connection could not send yet: the client's to take */
#define NGX_HTTP_SEADRAGON_UNSENT                                            \
    (NGX_LOWLEVEL_BUFFERED|NGX_HTTP_WRITE_BUFFERED)


static ngx_uint_t ngx_http_seadragon_release_answer_end(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_seadragon_stall_watch(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static off_t ngx_http_seadragon_stall_taken(ngx_http_request_t *r);
static void ngx_http_seadragon_stall_handler(ngx_event_t *ev);
static void ngx_http_seadragon_stall_cleanup(void *data);


/*
 * Ollama is done with the request once it has sent the last byte of its
 * answer: the slot of the gate is given back there and then, when nginx
 * has read that byte from Ollama (the client may not have taken it yet),
 * or at the latest when the last buffer of the answer goes down the
 * chain.  Until then, a client that takes nothing is watched (below).
 */

ngx_int_t
ngx_http_seadragon_release_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                  rc;
    ngx_uint_t                 last;
    ngx_chain_t               *cl;
    ngx_http_upstream_t       *u;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

    /* a health check's /api/ps: what would not fit in memory is dropped */

    if (r != r->main) {
        ngx_http_seadragon_health_ps_body(r, in);
    }

    /* what the answer used, read before it goes on (it is not changed) */

    if (ctx && ctx->usage_parser && r == r->main) {
        ngx_http_seadragon_usage_parse(r, ctx, in);
    }

    /*
     * The whole answer has passed: what it used is kept and the key's
     * place given back now, before the client can have the last byte
     * (and so send its next request), and not when the request is freed,
     * which a lingering close delays by seconds, or past a fast shutdown
     * (that runs no cleanup).  Unbuffered, the chain that brings the last
     * byte Ollama announced is the end; buffered, the last buffer.
     */

    if (ctx && r == r->main && ctx->state == NGX_HTTP_SEADRAGON_ADMITTED
        && !ctx->usage_kept
        && ngx_http_seadragon_release_answer_end(r, in))
    {
        ngx_http_seadragon_usage_end(r, ctx);
        ngx_http_seadragon_limit_end(r, ctx);
    }

    if (ctx == NULL || r != r->main || !ctx->holds_slot) {
        return ngx_http_seadragon_body_replace(r, in, ctx);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    rc = ngx_http_seadragon_body_replace(r, in, ctx);

    if (rc == NGX_ERROR) {
        return rc;
    }

    /*
     * Unbuffered proxying counts down what Ollama has still to send: all
     * of it read, and stuck before a slow client, the model is free.
     * Only with one server: nginx counts the connection to it until the
     * client has taken the rest, and least_conn must not send the next
     * request to a busy server because of that count.
     */

    u = r->upstream;

    if (last || ctx->last_sent
        || (u && !u->buffering && u->length == 0 && u->peer.tries <= 1
            && (r->connection->buffered & NGX_HTTP_SEADRAGON_UNSENT)))
    {

        if (ctx->stall.timer_set) {
            ngx_del_timer(&ctx->stall);
        }

        ngx_http_seadragon_gate_release(ctx);

        return rc;
    }

    ngx_http_seadragon_stall_watch(r, ctx);

    return rc;
}


/* whether in holds the end of Ollama's answer */

static ngx_uint_t
ngx_http_seadragon_release_answer_end(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            return 1;
        }
    }

    u = r->upstream;

    return u && !u->buffering && u->length == 0 && in != NULL;
}


/*
 * While a request holds the slot and the client's connection cannot take
 * what is ready for it, a timer watches how much the client has taken.
 * With less than NGX_HTTP_SEADRAGON_STALL_MIN bytes taken in
 * seadragon_stall_timeout, the model waits on a client that does not
 * read: the stream is cut as send_timeout would cut it (nginx then closes
 * Ollama's connection, which stops the generation), and the slot goes to
 * the next request.  The timer looks a few times per timeout, so that a
 * reader that takes its answer in bursts now and then is let be; one that
 * takes a byte now and then, which would hold the model for the whole
 * generation, is not.
 */

#define NGX_HTTP_SEADRAGON_STALL_MIN  1024

static void
ngx_http_seadragon_stall_watch(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_connection_t               *c;
    ngx_http_cleanup_t             *cln;
    ngx_http_seadragon_loc_conf_t  *slcf;

    c = r->connection;
    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (slcf->stall_timeout == 0 || r->upstream == NULL) {
        return;
    }

    /* everything went out: what the request waits for is Ollama */

    if (!(c->buffered & NGX_HTTP_SEADRAGON_UNSENT)) {
        if (ctx->stall.timer_set) {
            ngx_del_timer(&ctx->stall);
        }

        return;
    }

    if (ctx->stall.timer_set) {
        return;
    }

    if (!ctx->stall_watched) {
        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return;
        }

        cln->handler = ngx_http_seadragon_stall_cleanup;
        cln->data = ctx;

        ctx->stall.handler = ngx_http_seadragon_stall_handler;
        ctx->stall.data = ctx;
        ctx->stall.log = c->log;
        ctx->stall_watched = 1;
    }

    ctx->stall_mark = ngx_http_seadragon_stall_taken(r);
    ctx->stall_since = ngx_current_msec;

    ngx_add_timer(&ctx->stall, slcf->stall_timeout / 4 + 1);
}


/*
 * How much of the answer the client has taken: what nginx wrote, less
 * what still waits in the socket's send queue on Linux (an HTTP/1.x
 * connection of its own; the kernel's buffers would otherwise hide a
 * reader's progress for a while), or what nginx wrote.
 */

static off_t
ngx_http_seadragon_stall_taken(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

#if (NGX_LINUX && defined TIOCOUTQ)
    int                queued;
#endif

    c = r->connection;

#if (NGX_LINUX && defined TIOCOUTQ)

    if (c->type == SOCK_STREAM
#if (NGX_HTTP_V2)
        && r->stream == NULL
#endif
#if (NGX_QUIC)
        && c->quic == NULL
#endif
        && ioctl(c->fd, TIOCOUTQ, &queued) != -1)
    {
        return c->sent - queued;
    }

#endif

    return c->sent;
}


static void
ngx_http_seadragon_stall_handler(ngx_event_t *ev)
{
    off_t                           taken;
    ngx_msec_t                      idle, timeout;
    ngx_event_t                    *wev;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_seadragon_ctx_t       *ctx;
    ngx_http_seadragon_loc_conf_t  *slcf;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (!ctx->holds_slot || !(c->buffered & NGX_HTTP_SEADRAGON_UNSENT)) {
        return;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    timeout = slcf->stall_timeout;

    taken = ngx_http_seadragon_stall_taken(r);

    if (taken - ctx->stall_mark >= NGX_HTTP_SEADRAGON_STALL_MIN) {
        ctx->stall_mark = taken;
        ctx->stall_since = ngx_current_msec;
    }

    idle = ngx_current_msec - ctx->stall_since;

    if (idle < timeout) {
        ngx_add_timer(ev, ngx_min(timeout - idle, timeout / 4 + 1));
        return;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "seadragon cuts the stream of a client that took less "
                  "than %d bytes in %Mms (seadragon_stall_timeout): the "
                  "model goes to the next request",
                  NGX_HTTP_SEADRAGON_STALL_MIN, idle);

    ctx->stalled = 1;

    /*
     * The client's send timeout, now: the upstream module closes Ollama's
     * connection (the server is free before the slot is) and ends the
     * request, whose cleanup gives the slot back; it may be freed on
     * return.
     */

    wev = c->write;

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->delayed = 0;
    wev->timedout = 1;
    wev->handler(wev);
}


static void
ngx_http_seadragon_stall_cleanup(void *data)
{
    ngx_http_seadragon_ctx_t  *ctx = data;

    if (ctx->stall.timer_set) {
        ngx_del_timer(&ctx->stall);
    }
}
