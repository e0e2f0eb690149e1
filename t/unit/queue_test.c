
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the zone's queue (ngx_http_seadragon_queue.c) on plain
 * memory: dispatch order, positions, source slots, dead owners, clients
 * of max_queued_per_client.  Prints TAP for prove (t/001-queue.t runs it).
 */


#include "ngx_http_seadragon_module.h"

#include <stdio.h>


static int  tests, failures;

/* nginx's, set by ngx_os_init() in a process, by the test here */
ngx_uint_t  ngx_pagesize;


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
static ngx_msec_t                   now;
static ngx_http_seadragon_entry_t   entries[64];
static ngx_uint_t                   nentries;
static ngx_http_seadragon_owner_t   owners[16];
static ngx_uint_t                   nowners;
static ngx_http_seadragon_client_t  clients[16];


/*
 * nginx's red-black tree lives in ngx_rbtree.c, which nginx-dev does not
 * ship: a plain binary search tree with the same interface stands in, as
 * the module's code sees only the interface.
 */

void
ngx_rbtree_insert(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    if (tree->root == tree->sentinel) {
        node->parent = NULL;
        node->left = tree->sentinel;
        node->right = tree->sentinel;
        ngx_rbt_black(node);
        tree->root = node;
        return;
    }

    tree->insert(tree->root, node, tree->sentinel);
}


static void
transplant(ngx_rbtree_t *tree, ngx_rbtree_node_t *u, ngx_rbtree_node_t *v)
{
    if (u->parent == NULL) {
        tree->root = v;

    } else if (u == u->parent->left) {
        u->parent->left = v;

    } else {
        u->parent->right = v;
    }

    if (v != tree->sentinel) {
        v->parent = u->parent;
    }
}


void
ngx_rbtree_delete(ngx_rbtree_t *tree, ngx_rbtree_node_t *z)
{
    ngx_rbtree_node_t  *y, *s;

    s = tree->sentinel;

    if (z->left == s) {
        transplant(tree, z, z->right);

    } else if (z->right == s) {
        transplant(tree, z, z->left);

    } else {
        for (y = z->right; y->left != s; y = y->left) { /* void */ }

        if (y->parent != z) {
            transplant(tree, y, y->right);
            y->right = z->right;
            y->right->parent = y;
        }

        transplant(tree, z, y);
        y->left = z->left;
        y->left->parent = y;
    }
}


ngx_rbtree_node_t *
ngx_rbtree_next(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t  *parent;

    if (node->right != tree->sentinel) {
        return ngx_rbtree_min(node->right, tree->sentinel);
    }

    for ( ;; ) {
        parent = node->parent;

        if (node == tree->root) {
            return NULL;
        }

        if (node == parent->left) {
            return parent;
        }

        node = parent;
    }
}


/* the record of a worker, made on first use; token 7 unless told */

static ngx_http_seadragon_owner_t *
owner_of(ngx_pid_t pid, uint64_t token)
{
    ngx_uint_t                   i;
    ngx_http_seadragon_owner_t  *o;

    for (i = 0; i < nowners; i++) {
        if (owners[i].pid == pid && owners[i].token == token) {
            return &owners[i];
        }
    }

    o = &owners[nowners++];
    ngx_memzero(o, sizeof(*o));
    o->pid = pid;
    o->token = token;
    ngx_http_seadragon_queue_owner_add(&sh, o);

    return o;
}


static ngx_http_seadragon_entry_t *
push_client(ngx_uint_t source, ngx_pid_t pid, uint64_t token,
    ngx_http_seadragon_client_t *client)
{
    ngx_http_seadragon_entry_t  *e;

    e = &entries[nentries++ % 64];
    ngx_memzero(e, sizeof(*e));
    e->source = source;
    e->owner = owner_of(pid, token);
    e->client = client;
    e->owner_pid = pid;
    e->owner_token = token;
    e->enqueued = now;

    ngx_http_seadragon_queue_push(&sh, e);

    return e;
}


static ngx_http_seadragon_entry_t *
push(ngx_uint_t source, ngx_pid_t pid)
{
    return push_client(source, pid, 7, NULL);
}


static ngx_http_seadragon_client_t *
client(char *name)
{
    ngx_uint_t                    i;
    ngx_http_seadragon_client_t  *c;

    c = ngx_http_seadragon_queue_client_find(&sh, (u_char *) name,
                                             strlen(name));
    if (c) {
        return c;
    }

    for (i = 0; clients[i].len; i++) { /* void */ }

    ngx_http_seadragon_queue_client_insert(&sh, &clients[i], (u_char *) name,
                                           strlen(name));
    return &clients[i];
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


/* the waiting entries as queue_order lists them, their ids */

static void
listed(char *out, size_t size)
{
    char                        *p;
    ngx_uint_t                   i, n;
    ngx_http_seadragon_entry_t  *list[64];

    p = out;
    *p = '\0';

    n = ngx_http_seadragon_queue_order(&sh, now, list, 64);

    for (i = 0; i < n; i++) {
        p += snprintf(p, size - (p - out), "%s%d", p == out ? "" : ",",
                      (int) list[i]->id);
    }
}


int
main(void)
{
    char                         order[256];
    ngx_uint_t                    coding, chat, api, chat2, i, j, n, requests;
    ngx_queue_t                   dead;
    ngx_http_seadragon_owner_t    found[8], *o, *p;
    ngx_http_seadragon_entry_t   *e1, *e2, *e3, *e4, *e5, *e6;
    ngx_http_seadragon_client_t  *c1, *c2;

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

    listed(order, sizeof(order));
    ok(strcmp(order, "3,6,2,4,1,5") == 0,
       "queue_order lists the line in dispatch order: %s", order);
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

    i = ngx_http_seadragon_queue_foreign_owners(&sh, 7, found, 8, &n);
    ok(i == 0 && n == 0, "workers of our token are never foreign (%d)",
       (int) i);

    /* pid 100 is us now (token 8): the others had tokens 7 */

    o = owner_of(100, 8);
    i = ngx_http_seadragon_queue_foreign_owners(&sh, 8, found, 8, &n);
    ok(i == 5 && n == 5,
       "every other worker is named, with how many entries they hold, "
       "however deep in a line (%d workers, %d entries)", (int) i, (int) n);

    ok(owner_of(100, 7)->entries == 2 && o->entries == 0,
       "entries are counted per worker, not per pid (%d)",
       (int) owner_of(100, 7)->entries);

    i = ngx_http_seadragon_queue_foreign_owners(&sh, 8, found, 2, &n);
    j = ngx_http_seadragon_queue_foreign_owners(&sh, 8, found + 2, 2, &n);
    ok(i == 2 && j == 2 && found[0].pid != found[2].pid,
       "past \"max\" workers, the next call starts with others "
       "(%d then %d)", (int) found[0].pid, (int) found[2].pid);

    /* pid 300 holds the slot and had one more request on its way */

    owner_of(300, 7)->tracked[chat] = 2;
    owner_of(400, 7)->tracked[api] = 1;
    owner_of(200, 7)->tracked[coding] = 1;

    ngx_queue_init(&dead);
    p = ngx_http_seadragon_queue_purge(&sh, 400, 7, &dead, &n, &requests);
    ok(p && n == 1
       && requests == 1 && sh.sources[api].counters.aborted_reaped == 1,
       "a dead worker's entry is purged from the middle of a line, and "
       "its request is counted as reaped");
    ok(sh.nowners == 5
       && ngx_http_seadragon_queue_purge(&sh, 400, 7, &dead, &n, &requests)
          == NULL,
       "a purged worker leaves the list: whoever comes second finds none");

    ngx_queue_init(&dead);
    p = ngx_http_seadragon_queue_purge(&sh, 200, 7, &dead, &n, &requests);
    ok(p && n == 1 && sh.nwaiting == 2,
       "purging a dead worker unlinks its entries only");
    ngx_queue_init(&dead);
    p = ngx_http_seadragon_queue_purge(&sh, 300, 7, &dead, &n, &requests);
    ok(p && n == 1 && requests == 2 && sh.nrunning == 0
       && sh.sources[chat].counters.aborted_reaped == 2,
       "a dead worker's slot is freed and all it had received is counted");
    ngx_queue_init(&dead);
    p = ngx_http_seadragon_queue_purge(&sh, 100, 7, &dead, &n, &requests);
    ok(p && n == 2 && sh.nwaiting == 0 && sh.nowners == 2,
       "entries of an earlier process with our pid are purged, ours stay");
    (void) e5;

    /* the clients of max_queued_per_client */

    c1 = client("addr:10.0.0.1");
    c2 = client("key:alice");
    ok(sh.nclients == 2 && client("addr:10.0.0.1") == c1
       && ngx_http_seadragon_queue_client_find(&sh, (u_char *) "key:bob", 7)
          == NULL,
       "clients are found by name");

    e1 = push_client(api, 1, 7, c1);
    e2 = push_client(chat, 1, 7, c1);
    e3 = push_client(api, 1, 7, c2);
    ok(c1->parked == 2 && c2->parked == 1,
       "a client counts its requests in line, whatever their source");

    ngx_http_seadragon_queue_grant(&sh, e2, 0);
    ok(c1->parked == 1 && e2->client == NULL,
       "a request that gets a slot no longer counts as waiting");
    ngx_http_seadragon_queue_remove(&sh, e2);
    ok(c1->parked == 1, "and leaving the gate changes nothing");

    ngx_http_seadragon_queue_remove(&sh, e1);
    ok(c1->parked == 0 && sh.nclients == 1
       && ngx_http_seadragon_queue_client_find(&sh, (u_char *) "addr:10.0.0.1",
                                               13) == NULL
       && ngx_queue_head(&sh.clients_free) == &c1->link,
       "a client without requests in line leaves the tree, to be freed");
    ngx_queue_remove(&c1->link);
    c1->len = 0;

    e4 = push_client(api, 500, 7, c2);
    ngx_queue_init(&dead);
    p = ngx_http_seadragon_queue_purge(&sh, 500, 7, &dead, &n, &requests);
    ok(p && c2->parked == 1,
       "reaping a dead worker gives back its clients' places in line");
    ngx_http_seadragon_queue_remove(&sh, e3);
    ok(sh.nclients == 0 && sh.clients.root == sh.clients.sentinel,
       "the tree is empty when the line is");
    (void) e4;

    for (i = 0; i < 8; i++) {
        snprintf(order, sizeof(order), "addr:10.0.0.%d", (int) i);
        c1 = client(order);
        c1->parked = 1;
    }

    for (i = 0; i < 8; i++) {
        snprintf(order, sizeof(order), "addr:10.0.0.%d", (int) i);
        c1 = ngx_http_seadragon_queue_client_find(&sh, (u_char *) order,
                                                  strlen(order));
        ok(c1 && c1->len == strlen(order)
           && ngx_strncmp(c1->name, order, c1->len) == 0,
           "client %s found among 8", order);
    }

    /* when a process started, from /proc/PID/stat */

    snprintf(order, sizeof(order), "%s", "4242 (nginx: worker) S 1 4242 4242 "
             "0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 200");
    ok(ngx_http_seadragon_queue_parse_start((u_char *) order, strlen(order),
                                            &n) == 98765 && n == 0,
       "the 22nd field of /proc/PID/stat is the start time");
    snprintf(order, sizeof(order), "%s", "7 (a) b) (c) Z 1 7 7 0 -1 1 0 0 "
             "0 0 0 0 0 0 20 0 1 0 12345 0 0");
    ok(ngx_http_seadragon_queue_parse_start((u_char *) order, strlen(order),
                                            &n) == 12345 && n == 1,
       "a command name with spaces and parentheses; a zombie is dead");
    ok(ngx_http_seadragon_queue_parse_start((u_char *) "7 (x) S 1", 9, &n)
       == 0, "a short text gives no start time");

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

    listed(order + 192, 64);
    drain(order, sizeof(order));
    ok(strcmp(order, order + 192) == 0,
       "with aging, queue_order agrees with dispatch: %s", order + 192);
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

    /* the pages the queue keeps for itself */

    {
        ngx_slab_pool_t   pool;
        ngx_slab_page_t   pages[256];

        ngx_pagesize = 4096;
        pool.pages = pages;
        pool.last = pages + 256;

        pool.pfree = 200;
        ok(ngx_http_seadragon_queue_spare(&pool, 512, 1),
           "a zone with 200 of 256 pages free may give one away");
        pool.pfree = 40;
        ok(!ngx_http_seadragon_queue_spare(&pool, 512, 1),
           "512 requests' entries and clients want more than 40 pages of "
           "4k (%d-byte entries): none to spare",
           (int) sizeof(ngx_http_seadragon_entry_t));
        pool.pfree = 129;
        ok(ngx_http_seadragon_queue_spare(&pool, 100000, 1),
           "the queue keeps at most half the zone");
        pool.pfree = 10;
        ok(ngx_http_seadragon_queue_spare(&pool, 1, 1),
           "a short queue leaves the rest to spare");
    }

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
