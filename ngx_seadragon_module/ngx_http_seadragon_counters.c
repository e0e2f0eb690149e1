
/*
 * Copyright (C) The Seadragon authors
 *
 * The statistics: the counters kept per source in the zone (how requests
 * ended) and the histogram of the time they waited in line.  They record
 * what the gate did; none of them decides anything.
 */


#include "ngx_http_seadragon_module.h"


/* seconds: 0.1 0.5 1 2.5 5 10 30 60 120 300 600 1800 (and +Inf) */

ngx_msec_t  ngx_http_seadragon_wait_buckets[NGX_HTTP_SEADRAGON_BUCKETS] = {
    100, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000,
    600000, 1800000
};


/*
 * Counts that a request was received (ngx_http_seadragon_gate_track()
 * then records it in the worker's record in the zone), or how it ended,
 * which takes it off that record: once counted as ended, a request is no
 * longer the reaper's to count as aborted.reaped.  Only this worker
 * writes its record, so no lock is taken.
 */

void
ngx_http_seadragon_counters_add(ngx_http_seadragon_ctx_t *ctx,
    size_t counter)
{
    ngx_uint_t                  slot;
    ngx_http_seadragon_zone_t  *zone;

    zone = ctx->zone;
    slot = zone->slot[ctx->source];

    (void) ngx_atomic_fetch_add((ngx_atomic_uint_t *)
        ((u_char *) &zone->sh->sources[slot].counters + counter), 1);

    if (counter == ngx_http_seadragon_counter(received)) {
        return;
    }

    if (ctx->tracked && zone->owner) {
        zone->owner->tracked[slot]--;
    }

    ctx->tracked = 0;
}


/* under the zone's lock: a request admitted after "wait" in line */

void
ngx_http_seadragon_counters_wait(ngx_http_seadragon_counters_t *counters,
    ngx_msec_t wait)
{
    ngx_uint_t  b;

    counters->wait_total_ms += wait;

    if (wait > counters->wait_max_ms) {
        counters->wait_max_ms = wait;
    }

    counters->waited++;

    for (b = 0; b < NGX_HTTP_SEADRAGON_BUCKETS; b++) {
        if (wait <= ngx_http_seadragon_wait_buckets[b]) {
            counters->wait_buckets[b]++;
            break;
        }
    }
}
