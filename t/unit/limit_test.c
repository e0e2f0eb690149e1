
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of a key's limits (ngx_http_seadragon_limit_window.c) on
 * plain memory, with the clock driven by the test: requests per minute
 * and its window, tokens per UTC day and midnight, requests at once, the
 * Retry-After of each, and the zone's tree of keys.  Prints TAP for
 * prove (t/040-limit-unit.t runs it).
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


/* 2026-12-01T10:00:00Z */
#define T0  ((time_t) 1796119200)


static ngx_http_seadragon_shctx_t  sh;
static ngx_http_seadragon_limit_t  nodes[300];


/*
 * nginx's red-black tree lives in ngx_rbtree.c, which nginx-dev does not
 * ship: a plain binary search tree with the same interface stands in.
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


static ngx_uint_t
take(ngx_http_seadragon_limit_state_t *s, uint64_t rpm, uint64_t tokens,
    uint64_t concurrent, time_t now, time_t *retry)
{
    ngx_http_seadragon_limits_t  limits;

    limits.rpm = rpm;
    limits.tokens_per_day = tokens;
    limits.max_concurrent = concurrent;

    *retry = -1;

    return ngx_http_seadragon_limit_take(s, &limits, now, retry);
}


int
main(void)
{
    int                                i, passed;
    char                               name[32];
    time_t                             retry, now;
    ngx_uint_t                         rc;
    ngx_http_seadragon_limit_t        *l;
    ngx_http_seadragon_limit_state_t   s;

    /* requests per minute */

    ngx_memzero(&s, sizeof(s));
    now = T0 + 5;
    passed = 0;

    for (i = 0; i < 3; i++) {
        passed += take(&s, 3, 0, 0, now + i, &retry)
                  == NGX_HTTP_SEADRAGON_LIMIT_NONE;
    }

    ok(passed == 3, "rpm 3: three requests in a minute pass");
    ok(s.minute_start == now && s.minute_requests == 3,
       "the window opened with the first of them");

    rc = take(&s, 3, 0, 0, now + 20, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_RPM, "the fourth is refused by rpm");
    ok(retry == 40, "Retry-After: the 40 s left of the window (%d)",
       (int) retry);
    ok(s.minute_requests == 3 && s.running == 3,
       "a refused request takes nothing");

    rc = take(&s, 3, 0, 0, now + 59, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_RPM && retry == 1,
       "one second before the window closes: Retry-After 1 (%d)",
       (int) retry);

    rc = take(&s, 3, 0, 0, now + 60, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE,
       "when the window passes, the key is served again");
    ok(s.minute_start == now + 60 && s.minute_requests == 1,
       "and a new window opens with that request");

    rc = take(&s, 0, 0, 0, now + 61, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE && s.minute_requests == 2,
       "no rpm limit: requests still count, for a limit set later");

    rc = take(&s, 2, 0, 0, now + 62, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_RPM && retry == 58,
       "a limit lowered live applies to the next request (%d)", (int) retry);

    rc = take(&s, 5, 0, 0, now + 62, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE,
       "a limit raised live lets the next request in");

    rc = take(&s, 1, 0, 0, now + 10, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE && s.minute_start == now + 10,
       "a clock set back past the window's start opens a new window");

    /* tokens per day */

    ngx_memzero(&s, sizeof(s));
    now = T0;

    rc = take(&s, 0, 100, 0, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE, "tokens 100: the first passes");
    ngx_http_seadragon_limit_give(&s, 60, now + 1);
    ok(s.day_tokens == 60 && s.running == 0,
       "its 60 tokens count when it ends, and it runs no more");

    rc = take(&s, 0, 100, 0, now + 2, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE, "60 of 100 used: the next passes");
    ngx_http_seadragon_limit_give(&s, 70, now + 3);
    ok(s.day_tokens == 130,
       "a request already running may end past the limit (130)");

    rc = take(&s, 0, 100, 0, now + 4, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_TOKENS,
       "with the day's tokens used up, the next is refused");
    ok(retry == 14 * 3600 - 4,
       "Retry-After: the seconds until 00:00 UTC (%d)", (int) retry);

    rc = take(&s, 0, 200, 0, now + 5, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE,
       "the limit raised live: served again");
    ngx_http_seadragon_limit_give(&s, 0, now + 6);

    now = T0 + 14 * 3600 - 1;
    rc = take(&s, 0, 100, 0, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_TOKENS && retry == 1,
       "23:59:59 UTC: Retry-After 1 (%d)", (int) retry);
    ok(ngx_http_seadragon_limit_tokens(&s, now) == 130,
       "the day's tokens: 130");

    now = T0 + 14 * 3600;
    ok(ngx_http_seadragon_limit_tokens(&s, now) == 0,
       "at 00:00 UTC the new day has used nothing");
    rc = take(&s, 0, 100, 0, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE && s.day_tokens == 0,
       "at midnight the key is served again, from 0");

    ngx_http_seadragon_limit_give(&s, 30, now + 86400);
    ok(s.day_tokens == 30 && s.day == (uint64_t) (now + 86400) / 86400,
       "an answer that ends on a later day counts on that day");

    ngx_http_seadragon_limit_give(&s, UINT64_MAX, now + 86400);
    ok(s.day_tokens == UINT64_MAX, "tokens saturate, never wrap");

    /* requests at once */

    ngx_memzero(&s, sizeof(s));
    now = T0;

    passed = 0;

    for (i = 0; i < 2; i++) {
        passed += take(&s, 0, 0, 2, now, &retry)
                  == NGX_HTTP_SEADRAGON_LIMIT_NONE;
    }

    ok(passed == 2 && s.running == 2, "max_concurrent 2: two at once pass");

    rc = take(&s, 0, 0, 2, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT,
       "the third at once is refused");
    ok(retry == 2, "Retry-After: a few seconds (%d)", (int) retry);

    ngx_http_seadragon_limit_give(&s, 0, now + 1);
    rc = take(&s, 0, 0, 2, now + 1, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_NONE && s.running == 2,
       "when one ends, the next is let in");

    ngx_http_seadragon_limit_give(&s, 0, now + 2);
    ngx_http_seadragon_limit_give(&s, 0, now + 2);
    ngx_http_seadragon_limit_give(&s, 0, now + 2);
    ok(s.running == 0, "more ends than takes never wrap below 0");

    /* which limit speaks first */

    ngx_memzero(&s, sizeof(s));
    now = T0;
    (void) take(&s, 1, 10, 1, now, &retry);
    ngx_http_seadragon_limit_give(&s, 10, now);
    (void) take(&s, 0, 0, 0, now, &retry);

    rc = take(&s, 1, 10, 1, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_TOKENS,
       "over all three: the tokens, which free last, are named");
    rc = take(&s, 1, 0, 1, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_RPM, "then rpm");
    rc = take(&s, 0, 0, 1, now, &retry);
    ok(rc == NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT, "then max_concurrent");

    /* the zone's tree */

    ngx_memzero(&sh, sizeof(sh));

    ok(ngx_http_seadragon_limit_find(&sh, (u_char *) "alice", 5) == NULL,
       "a zone without keys finds none, with no tree made");

    ngx_http_seadragon_limit_insert(&sh, &nodes[0], (u_char *) "alice", 5,
                                    1234, T0);
    l = ngx_http_seadragon_limit_find(&sh, (u_char *) "alice", 5);
    ok(l == &nodes[0], "a key inserted is found");
    ok(l->state.day_tokens == 1234
       && ngx_http_seadragon_limit_tokens(&l->state, T0) == 1234,
       "it starts with the tokens the store counted today");
    ok(ngx_http_seadragon_limit_find(&sh, (u_char *) "alic", 4) == NULL
       && ngx_http_seadragon_limit_find(&sh, (u_char *) "alicee", 6) == NULL,
       "names differing in length are other keys");

    for (i = 1; i < 300; i++) {
        (void) snprintf(name, sizeof(name), "key-%d", i);
        ngx_http_seadragon_limit_insert(&sh, &nodes[i], (u_char *) name,
                                        strlen(name), 0, T0);
    }

    passed = 0;

    for (i = 1; i < 300; i++) {
        (void) snprintf(name, sizeof(name), "key-%d", i);
        passed += ngx_http_seadragon_limit_find(&sh, (u_char *) name,
                                                strlen(name))
                  == &nodes[i];
    }

    ok(passed == 299 && sh.nlimits == 300,
       "300 keys, each found as itself (%d)", passed);

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
