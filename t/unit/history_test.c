
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the queue's history (ngx_http_seadragon_history.c) on
 * plain memory, the clocks driven by the test: one sample a second, the
 * newest always the queue now, the oldest wait from the sources' heads,
 * the admissions of each second, the ring's order when it wraps and when
 * fewer are asked for.  Prints TAP for prove (t/046-history-unit.t).
 */


#include "ngx_http_seadragon_module.h"

#include <stdio.h>


static int  tests, failures;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        tests++;                                                             \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ");                                                  \
        }                                                                    \
        printf("ok %d - ", tests);                                           \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
    } while (0)


static ngx_http_seadragon_shctx_t   sh;
static ngx_http_seadragon_entry_t   entries[16];
static ngx_http_seadragon_sample_t  out[NGX_HTTP_SEADRAGON_HISTORY + 8];


static void
reset(ngx_uint_t nsources)
{
    ngx_uint_t  i;

    ngx_memzero(&sh, sizeof(sh));
    ngx_memzero(entries, sizeof(entries));

    sh.nsources = nsources;

    for (i = 0; i < nsources; i++) {
        ngx_queue_init(&sh.sources[i].waiting);
    }
}


/* an entry waiting in a source since "enqueued" (ms) */

static void
wait_in(ngx_uint_t n, ngx_uint_t source, ngx_msec_t enqueued)
{
    entries[n].source = source;
    entries[n].enqueued = enqueued;
    ngx_queue_insert_tail(&sh.sources[source].waiting, &entries[n].link);
    sh.sources[source].nwaiting++;
    sh.nwaiting++;
}


static void
leave(ngx_uint_t n)
{
    ngx_queue_remove(&entries[n].link);
    sh.sources[entries[n].source].nwaiting--;
    sh.nwaiting--;
}


int
main(void)
{
    time_t      t;
    ngx_uint_t  n, i, sorted, admitted;

    /* nothing sampled: nothing to read */

    reset(2);
    ok(ngx_http_seadragon_history_read(&sh, out, 10) == 0,
       "an empty history reads as no samples");

    /* an empty queue: a sample of zeros */

    ngx_http_seadragon_history_sample(&sh, 1000, 50000);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 1 && out[0].time == 1000 && out[0].waiting == 0
       && out[0].running == 0 && out[0].oldest_ms == 0
       && out[0].admitted == 0, "an idle zone's sample is all zeros");

    /* the oldest wait is the oldest head of all sources, not the first's */

    wait_in(0, 0, 49000);
    wait_in(1, 0, 49500);
    wait_in(2, 1, 47000);
    sh.nrunning = 1;

    ngx_http_seadragon_history_sample(&sh, 1000, 50000);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 1, "a second look in the same second makes no new sample");
    ok(out[0].waiting == 3 && out[0].running == 1,
       "the sample of the second is the queue now (3 waiting, 1 running)");
    ok(out[0].oldest_ms == 3000,
       "the oldest wait is the longest wait of any source's head: %u",
       (unsigned) out[0].oldest_ms);

    /* admissions are counted in the second they happen */

    sh.history.admitted += 2;
    ngx_http_seadragon_history_sample(&sh, 1000, 50100);
    sh.history.admitted += 1;
    ngx_http_seadragon_history_sample(&sh, 1000, 50200);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 1 && out[0].admitted == 3,
       "every admission of a second is in its sample: %u",
       (unsigned) out[0].admitted);

    leave(2);
    sh.history.admitted += 4;
    ngx_http_seadragon_history_sample(&sh, 1001, 51000);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 2 && out[0].time == 1000 && out[1].time == 1001,
       "a new second, a new sample, after the older one");
    ok(out[0].admitted == 3 && out[1].admitted == 4,
       "admissions go to their own second (3, then 4)");
    ok(out[1].waiting == 2 && out[1].oldest_ms == 2000,
       "the oldest wait follows the heads: 2000 ms once the oldest left, "
       "got %u", (unsigned) out[1].oldest_ms);

    /* an entry enqueued by a worker whose clock is a little ahead */

    leave(0);
    leave(1);
    wait_in(3, 1, 52500);
    ngx_http_seadragon_history_sample(&sh, 1002, 52000);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 3 && out[2].oldest_ms == 0 && out[2].waiting == 1,
       "a wait that would be negative is 0");
    leave(3);

    /* a second without a look has no sample: the chart sees the gap */

    ngx_http_seadragon_history_sample(&sh, 1005, 55000);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 4 && out[3].time == 1005 && out[3].waiting == 0,
       "a later second after a gap");

    /* the newest "max" of them, oldest first */

    n = ngx_http_seadragon_history_read(&sh, out, 2);
    ok(n == 2 && out[0].time == 1002 && out[1].time == 1005,
       "asked for 2, the newest 2, oldest first");

    /* the ring wraps: the newest HISTORY seconds stay, in order */

    reset(1);
    admitted = 0;

    for (t = 1; t <= 2 * NGX_HTTP_SEADRAGON_HISTORY + 7; t++) {
        sh.history.admitted += t % 3;
        admitted = t % 3;
        ngx_http_seadragon_history_sample(&sh, 10000 + t, t * 1000);
    }

    n = ngx_http_seadragon_history_read(&sh, out,
                                        NGX_HTTP_SEADRAGON_HISTORY + 8);
    sorted = 1;

    for (i = 1; i < n; i++) {
        if (out[i].time != out[i - 1].time + 1) {
            sorted = 0;
        }
    }

    ok(n == NGX_HTTP_SEADRAGON_HISTORY,
       "a full ring holds %d samples: %u", NGX_HTTP_SEADRAGON_HISTORY,
       (unsigned) n);
    ok(sorted && out[n - 1].time == 10000 + 2 * NGX_HTTP_SEADRAGON_HISTORY + 7
       && out[0].time == 10000 + NGX_HTTP_SEADRAGON_HISTORY + 8,
       "the ring keeps the newest seconds, oldest first, one a second");
    ok(out[n - 1].admitted == admitted,
       "the newest sample has its own second's admissions");

    /* a wall clock set back: a new sample, never a lost look */

    ngx_http_seadragon_history_sample(&sh, 9000, 1000000);
    n = ngx_http_seadragon_history_read(&sh, out,
                                        NGX_HTTP_SEADRAGON_HISTORY + 8);
    ok(n == NGX_HTTP_SEADRAGON_HISTORY && out[n - 1].time == 9000,
       "a clock set back starts a new sample at the end");

    /* a zone from before the sources had FIFOs (all zeros) is read safely */

    ngx_memzero(&sh, sizeof(sh));
    sh.nsources = 3;
    ngx_http_seadragon_history_sample(&sh, 5, 5);
    n = ngx_http_seadragon_history_read(&sh, out, 10);
    ok(n == 1 && out[0].oldest_ms == 0, "sources without a FIFO are skipped");

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
