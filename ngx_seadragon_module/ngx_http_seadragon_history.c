
/*
 * Copyright (C) The Seadragon authors
 *
 * The queue over the last minutes, for the admin page's chart: a ring of
 * NGX_HTTP_SEADRAGON_HISTORY samples in the zone, at most one a second of
 * the wall clock.  A look in a second that has its sample already updates
 * that sample, so the newest one is always the queue now, and "admitted"
 * counts every admission of its second (the queue's grant counts them in
 * sh->history.admitted, and every dispatch looks).  The gate's tick looks
 * once a second even when nothing happens, so the samples have no gaps
 * while nginx runs.
 *
 * Pure, like the queue: plain memory, no requests, under the zone's lock.
 */


#include "ngx_http_seadragon_module.h"


static uint32_t ngx_http_seadragon_history_clamp(uint64_t value);


void
ngx_http_seadragon_history_sample(ngx_http_seadragon_shctx_t *sh,
    time_t now_sec, ngx_msec_t now)
{
    uint64_t                          admitted;
    ngx_uint_t                        i, last;
    ngx_queue_t                      *q;
    ngx_msec_int_t                    wait, oldest;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_sample_t      *s;
    ngx_http_seadragon_history_t     *h;
    ngx_http_seadragon_shm_source_t  *src;

    h = &sh->history;

    admitted = h->admitted - h->admitted_mark;
    h->admitted_mark = h->admitted;

    last = (h->next + NGX_HTTP_SEADRAGON_HISTORY - 1)
           % NGX_HTTP_SEADRAGON_HISTORY;
    s = &h->samples[last];

    if (s->time == 0 || s->time != now_sec) {
        s = &h->samples[h->next];
        h->next = (h->next + 1) % NGX_HTTP_SEADRAGON_HISTORY;

        ngx_memzero(s, sizeof(ngx_http_seadragon_sample_t));
        s->time = now_sec;
    }

    /* a source's FIFO is in arrival order: the oldest of all is a head */

    oldest = 0;

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        if (src->waiting.next == NULL || ngx_queue_empty(&src->waiting)) {
            continue;
        }

        q = ngx_queue_head(&src->waiting);
        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

        wait = (ngx_msec_int_t) (now - e->enqueued);

        if (wait > oldest) {
            oldest = wait;
        }
    }

    s->waiting = ngx_http_seadragon_history_clamp(sh->nwaiting);
    s->running = ngx_http_seadragon_history_clamp(sh->nrunning);
    s->oldest_ms = ngx_http_seadragon_history_clamp(oldest);
    s->admitted = ngx_http_seadragon_history_clamp(s->admitted + admitted);
}


/* the newest "max" samples at most, oldest first; how many */

ngx_uint_t
ngx_http_seadragon_history_read(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_sample_t *out, ngx_uint_t max)
{
    ngx_uint_t                     i, n, skip, slot;
    ngx_http_seadragon_history_t  *h;

    h = &sh->history;
    n = 0;

    for (i = 0; i < NGX_HTTP_SEADRAGON_HISTORY; i++) {
        if (h->samples[i].time) {
            n++;
        }
    }

    skip = (n > max) ? n - max : 0;
    n = 0;

    /* from the slot to write next, which is the oldest once the ring is full */

    for (i = 0; i < NGX_HTTP_SEADRAGON_HISTORY; i++) {
        slot = (h->next + i) % NGX_HTTP_SEADRAGON_HISTORY;

        if (h->samples[slot].time == 0) {
            continue;
        }

        if (skip) {
            skip--;
            continue;
        }

        out[n++] = h->samples[slot];
    }

    return n;
}


static uint32_t
ngx_http_seadragon_history_clamp(uint64_t value)
{
    return value > NGX_MAX_UINT32_VALUE ? NGX_MAX_UINT32_VALUE
                                        : (uint32_t) value;
}
