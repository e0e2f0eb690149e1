
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the zone's queue (ngx_http_seadragon_queue.c) on plain
 * memory: dispatch order, positions, source slots, dead owners.  Prints
 * TAP for prove (t/001-queue.t runs it).
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


static ngx_http_seadragon_shctx_t  sh;
static ngx_msec_t                  now;
static ngx_http_seadragon_entry_t  entries[64];
static ngx_uint_t                  nentries;


static ngx_http_seadragon_entry_t *
push(ngx_uint_t source, ngx_pid_t pid)
{
    ngx_http_seadragon_entry_t  *e;

    e = &entries[nentries++];
    ngx_memzero(e, sizeof(*e));
    e->source = source;
    e->owner_pid = pid;
    e->owner_token = 7;
    e->enqueued = now;

    ngx_http_seadragon_queue_push(&sh, e);

    return e;
}


static ngx_uint_t
slot(char *name, ngx_uint_t priority)
{
    ngx_str_t  s;

    s.data = (u_char *) name;
    s.len = strlen(name);

    return ngx_http_seadragon_queue_source_slot(&sh, &s, priority, 0, 0);
}


/* grants every waiting entry in dispatch order, returns their ids */

static void
drain(char *out, size_t size)
{
    char                        *p;
    ngx_http_seadragon_entry_t  *e;

    p = out;
    *p = '\0';

    while ((e = ngx_http_seadragon_queue_head(&sh, now)) != NULL) {
        ngx_http_seadragon_queue_grant(&sh, e, 0);
        p += snprintf(p, size - (p - out), "%s%d", p == out ? "" : ",",
                      (int) e->id);
        ngx_http_seadragon_queue_remove(&sh, e);
    }
}


int
main(void)
{
    char                         order[256];
    ngx_uint_t                   coding, chat, api, chat2, i;
    ngx_pid_t                    pids[4];
    ngx_queue_t                  dead;
    ngx_http_seadragon_entry_t  *e1, *e2, *e3, *e4, *e5, *e6;

    ngx_http_seadragon_queue_init(&sh, 0);

    coding = slot("coding", 1);
    chat = slot("chat", 2);
    api = slot("api", 3);
    chat2 = slot("chat2", 2);

    ok(coding == 0 && chat == 1 && api == 2 && chat2 == 3,
       "sources take slots in order");
    ok(slot("chat", 5) == chat && sh.sources[chat].priority == 5,
       "a known source keeps its slot and takes the new priority");
    slot("chat", 2);

    ok(ngx_http_seadragon_queue_head(&sh, now) == NULL, "an empty queue has no head");

    /* arrival: api, chat, coding, chat2, api, coding */

    e1 = push(api, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e1, now) == 1,
       "the first arrival is first in line");
    e2 = push(chat, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e2, now) == 1,
       "a more urgent arrival goes ahead of a less urgent one");
    e3 = push(coding, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e3, now) == 1,
       "the most urgent arrival is first");
    e4 = push(chat2, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e4, now) == 3,
       "an equally urgent source queues behind earlier arrivals (got %d)",
       (int) ngx_http_seadragon_queue_position(&sh, e4, now));
    e5 = push(api, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e5, now) == 5,
       "the least urgent arrival is last (got %d)",
       (int) ngx_http_seadragon_queue_position(&sh, e5, now));
    e6 = push(coding, 1);
    ok(ngx_http_seadragon_queue_position(&sh, e6, now) == 2,
       "FIFO within a source (got %d)",
       (int) ngx_http_seadragon_queue_position(&sh, e6, now));

    ok(sh.nwaiting == 6 && sh.sources[api].nwaiting == 2,
       "waiting counts per zone and per source");

    ok(e1->id < e2->id && e2->id < e3->id, "ids are arrival tickets");

    drain(order, sizeof(order));
    ok(strcmp(order, "3,6,2,4,1,5") == 0,
       "dispatch by priority, then arrival across equal sources: %s", order);
    ok(sh.nwaiting == 0 && sh.nrunning == 0, "drained queue is empty");

    /* grant keeps the entry in the running list until removed */

    e1 = push(chat, 1);
    ngx_http_seadragon_queue_grant(&sh, e1, 42);
    ok(sh.nrunning == 1 && sh.nwaiting == 0 && e1->granted == 42
       && e1->state == NGX_HTTP_SEADRAGON_ENTRY_RUNNING,
       "a granted entry holds a slot");
    ngx_http_seadragon_queue_remove(&sh, e1);
    ok(sh.nrunning == 0 && sh.sources[chat].nrunning == 0,
       "removing a running entry frees its slot");

    /* removal from the middle of a FIFO keeps the order of the rest */

    e1 = push(api, 1);
    e2 = push(api, 1);
    e3 = push(api, 1);
    ngx_http_seadragon_queue_remove(&sh, e2);
    ok(ngx_http_seadragon_queue_position(&sh, e3, now) == 2,
       "an entry that leaves the line moves the others up");
    drain(order, sizeof(order));
    (void) e1;

    /* dead owners */

    e1 = push(api, 100);
    e2 = push(coding, 200);
    e3 = push(chat, 300);
    ngx_http_seadragon_queue_grant(&sh, e3, 0);
    e4 = push(coding, 100);
    e5 = push(api, 400);

    i = ngx_http_seadragon_queue_foreign_owners(&sh, 100, pids, 4, 0);
    ok(i == 3 && (pids[0] == 400 || pids[1] == 400 || pids[2] == 400),
       "the owners table names every other worker with entries, however "
       "deep in a line (%d)", (int) i);

    ok(sh.nowners == 4 && sh.owners[0].pid == 100 && sh.owners[0].entries == 2,
       "entries are counted per owner (%d owners, %d of pid 100)",
       (int) sh.nowners, (int) sh.owners[0].entries);

    sh.owners_overflow = 1;

    i = ngx_http_seadragon_queue_foreign_owners(&sh, 100, pids, 4, 0);
    ok(i == 2 && ((pids[0] == 200 && pids[1] == 300)
                  || (pids[0] == 300 && pids[1] == 200)),
       "past a full table, a tick looks at the heads and the running (%d)",
       (int) i);

    i = ngx_http_seadragon_queue_foreign_owners(&sh, 100, pids, 4, 1);
    ok(i == 3 && (pids[0] == 400 || pids[1] == 400 || pids[2] == 400),
       "and a full check at every entry (%d)", (int) i);

    sh.owners_overflow = 0;

    ngx_queue_init(&dead);
    ok(ngx_http_seadragon_queue_purge(&sh, 400, 100, 7, &dead) == 1,
       "a dead owner's entry is purged from the middle of a line");
    ok(sh.owners[3].entries == 0
       && ngx_http_seadragon_queue_foreign_owners(&sh, 100, pids, 4, 0) == 2,
       "a purged owner leaves the table");

    ngx_queue_init(&dead);
    i = ngx_http_seadragon_queue_purge(&sh, 200, 100, 7, &dead);
    ok(i == 1 && sh.nwaiting == 2,
       "purging a dead worker unlinks its entries only");
    ngx_queue_init(&dead);
    i = ngx_http_seadragon_queue_purge(&sh, 300, 100, 7, &dead);
    ok(i == 1 && sh.nrunning == 0, "a dead worker's slot is freed");
    ngx_queue_init(&dead);
    i = ngx_http_seadragon_queue_purge(&sh, 0, 100, 8, &dead);
    ok(i == 2 && sh.nwaiting == 0,
       "entries of an earlier process with our pid are purged");

    /*
     * Aging: with aging=100 on api (priority 3), each 100 ms waited makes
     * an entry one step more urgent, down to 0, where arrival decides.
     */

    now = 1000;
    sh.sources[api].aging = 100;

    e1 = push(api, 1);
    now = 1150;
    e2 = push(coding, 1);
    e3 = push(chat, 1);

    ok(ngx_http_seadragon_queue_effective(&sh, e1, now) == 2,
       "150 ms of aging=100 is one step (priority 3 is now 2, got %d)",
       (int) ngx_http_seadragon_queue_effective(&sh, e1, now));
    ok(ngx_http_seadragon_queue_head(&sh, now) == e2,
       "one step is not enough to pass the most urgent source");
    ok(ngx_http_seadragon_queue_position(&sh, e1, now) == 2,
       "an aged entry goes ahead of a newer one of equal priority (%d)",
       (int) ngx_http_seadragon_queue_position(&sh, e1, now));

    now = 1300;
    ok(ngx_http_seadragon_queue_effective(&sh, e1, now) == 0
       && ngx_http_seadragon_queue_head(&sh, now) == e1,
       "300 ms in, the aged entry is first: it arrived before the others");
    ok(ngx_http_seadragon_queue_effective(&sh, e2, now) == 1,
       "sources without aging keep their priority");

    now = 100000;
    ok(ngx_http_seadragon_queue_effective(&sh, e1, now) == 0,
       "aging stops at priority 0");

    drain(order, sizeof(order));
    snprintf(order + 128, 64, "%d,%d,%d", (int) e1->id, (int) e2->id,
             (int) e3->id);
    ok(strcmp(order, order + 128) == 0,
       "aged dispatch: %s", order);

    sh.sources[api].aging = 0;
    now = 1000;
    e1 = push(api, 1);
    now = 1000000;
    e2 = push(coding, 1);
    ok(ngx_http_seadragon_queue_head(&sh, now) == e2,
       "without aging, a wait never changes the order");
    drain(order, sizeof(order));

    /* slots are bounded */

    for (i = sh.nsources; i < NGX_HTTP_SEADRAGON_MAX_SOURCES; i++) {
        snprintf(order, sizeof(order), "s%d", (int) i);
        (void) slot(order, 1);
    }

    ok(slot("one-too-many", 1) == (ngx_uint_t) NGX_ERROR,
       "at most %d sources", NGX_HTTP_SEADRAGON_MAX_SOURCES);

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
