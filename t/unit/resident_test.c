
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the zone's view of the resident models
 * (ngx_http_seadragon_resident.c) on plain memory, with the clock driven
 * by the test: canonical names, least recently used eviction at loaded=
 * models, predicted swaps, loads from load_duration, /api/ps and its
 * grace, the "other" slot, the bound on servers.  Prints TAP for prove
 * (t/044-resident-unit.t runs it).
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


#define T0  ((time_t) 1796119200)


static ngx_http_seadragon_shctx_t  sh;


static void
reset(ngx_uint_t loaded)
{
    ngx_memzero(&sh, sizeof(sh));
    sh.loaded = loaded;
}


static void
dispatch(char *model, ngx_msec_t now)
{
    ngx_http_seadragon_resident_dispatch(&sh, (u_char *) model, strlen(model),
                                         now, T0 + now / 1000);
}


static void
answer(char *server, char *model, uint64_t load_ms, ngx_msec_t now)
{
    ngx_http_seadragon_resident_answer(&sh, (u_char *) server,
                                       server ? strlen(server) : 0,
                                       (u_char *) model, strlen(model),
                                       load_ms, now, T0 + now / 1000);
}


/* the gate's view as "a,b", in the order of its table */

static char *
view(void)
{
    static char  buf[2048];
    size_t       n;
    ngx_uint_t   i;

    n = 0;
    buf[0] = '\0';

    for (i = 0; i < sh.resident.nmodels; i++) {
        n += snprintf(buf + n, sizeof(buf) - n, "%s%.*s", i ? "," : "",
                      (int) sh.resident.models[i].len,
                      sh.resident.models[i].name);
    }

    return buf;
}


static ngx_http_seadragon_swap_t *
swap(char *model)
{
    ngx_uint_t  i;

    for (i = 0; i < sh.resident.nswaps; i++) {
        if (sh.resident.swaps[i].len == strlen(model)
            && memcmp(sh.resident.swaps[i].name, model, strlen(model)) == 0)
        {
            return &sh.resident.swaps[i];
        }
    }

    return NULL;
}


int
main(void)
{
    u_char                        out[NGX_HTTP_SEADRAGON_MODEL_LEN];
    char                          name[32];
    size_t                        n;
    ngx_str_t                     ps[3];
    ngx_uint_t                    i;
    ngx_http_seadragon_swap_t    *s;

    /* canonical names */

    n = ngx_http_seadragon_model_canonical(out, sizeof(out),
                                           (u_char *) "llama3", 6);
    ok(n == 13 && memcmp(out, "llama3:latest", 13) == 0,
       "a name without a tag gets :latest");

    n = ngx_http_seadragon_model_canonical(out, sizeof(out),
                                           (u_char *) "llama3:70b", 10);
    ok(n == 10 && memcmp(out, "llama3:70b", 10) == 0, "a tag is kept");

    n = ngx_http_seadragon_model_canonical(out, 10, (u_char *) "abcdefgh", 8);
    ok(n == 8, "a name with no room for :latest is kept as it is");

    n = ngx_http_seadragon_model_canonical(out, 3,
                                           (u_char *) "ab\xc3\xa9x:1", 7);
    ok(n == 2, "a name cut to its size ends before a cut UTF-8 character");

    n = ngx_http_seadragon_model_canonical(out, sizeof(out),
                                           (u_char *) "ab\xe2\x82", 4);
    ok(n == 2, "a name that ends inside a UTF-8 character ends before it");

    n = ngx_http_seadragon_model_canonical(out, sizeof(out),
                                           (u_char *) "ab\xe2\x82\xac", 5);
    ok(n == 5 + 7, "a whole UTF-8 character at the end stays, :latest after");

    n = ngx_http_seadragon_model_canonical(out, sizeof(out), (u_char *) "", 0);
    ok(n == 0, "an empty name stays empty");

    /* one model at a time: A B A is three predicted swaps */

    reset(0);
    dispatch("a", 1000);
    dispatch("b", 1100);
    dispatch("a", 1200);
    ok(strcmp(view(), "a:latest") == 0, "loaded 0 is 1: the last one only");
    ok(swap("a:latest")->dispatched == 2 && swap("a:latest")->predicted == 2
       && swap("b:latest")->predicted == 1,
       "A B A with one loaded: every dispatch a predicted swap");

    dispatch("a", 1300);
    ok(swap("a:latest")->dispatched == 3 && swap("a:latest")->predicted == 2,
       "a resident model again: no predicted swap");

    /* two at a time: the least recently used goes */

    reset(2);
    dispatch("a", 1000);
    dispatch("b", 1100);
    dispatch("a", 1200);
    dispatch("c", 1300);
    ok(strcmp(view(), "a:latest,c:latest") == 0,
       "loaded 2: c evicts b, the least recently used");
    ok(swap("a:latest")->predicted == 1 && swap("c:latest")->predicted == 1,
       "loaded 2: A B A C predicts three swaps");

    sh.loaded = 1;
    dispatch("c", 1400);
    ok(strcmp(view(), "c:latest") == 0,
       "a smaller loaded= shrinks the view at the next dispatch");

    /* answers: loads from load_duration, the server's view */

    reset(1);
    dispatch("a", 1000);
    answer("127.0.0.1:11434", "a", 300, 1500);
    answer("127.0.0.1:11434", "a", 249, 1600);
    answer("127.0.0.1:11434", "a", 250, 1700);
    s = swap("a:latest");
    ok(s->loads == 2 && s->load_ms == 550,
       "a load_duration of 250 ms or more is a load, counted with its time");
    ok(sh.resident.nservers == 1 && sh.resident.servers[0].nmodels == 1
       && sh.resident.servers[0].checked == 0,
       "the server's view has the model, never checked by /api/ps");

    answer("127.0.0.1:11434", "b", 0, 1800);
    ok(strcmp(view(), "b:latest") == 0
       && sh.resident.servers[0].nmodels == 1
       && sh.resident.servers[0].models[0].len == 8,
       "an answer of another model: it is resident, in both views");
    ok(swap("b:latest") == NULL,
       "an answer counts no dispatch and no swap without a load");

    answer(NULL, "b", 0, 1900);
    ok(sh.resident.nservers == 2 && sh.resident.servers[1].len == 0,
       "an answer without a server: the server \"\"");

    /* /api/ps */

    reset(2);
    dispatch("a", 1000);
    dispatch("b", 5000);
    ps[0].data = (u_char *) "b";
    ps[0].len = 1;
    ps[1].data = (u_char *) "c:7b";
    ps[1].len = 4;
    ngx_http_seadragon_resident_ps(&sh, (u_char *) "s:1", 3, ps, 2, 6000,
                                   T0 + 6);
    ok(sh.resident.servers[0].nmodels == 2
       && sh.resident.servers[0].checked == T0 + 6,
       "/api/ps: the server's view is its listing, checked now");
    ok(strcmp(view(), "b:latest,c:7b") == 0,
       "/api/ps: the gate's view drops a, gains c:7b");

    ngx_http_seadragon_resident_ps(&sh, (u_char *) "s:1", 3, ps, 0, 6500,
                                   T0 + 6);
    ok(sh.resident.servers[0].nmodels == 0,
       "/api/ps with no model: the server holds nothing");
    ok(strcmp(view(), "b:latest") == 0,
       "b dispatched 1.5 s ago stays in the gate's view; c:7b goes");

    ngx_http_seadragon_resident_ps(&sh, (u_char *) "s:1", 3, ps, 0, 7000,
                                   T0 + 7);
    ok(sh.resident.nmodels == 0, "after 2 s, b goes too");

    /* the counts of many models: the last slot is "other" */

    reset(1);

    for (i = 0; i < NGX_HTTP_SEADRAGON_SWAP_MODELS + 10; i++) {
        snprintf(name, sizeof(name), "m%u:1", (unsigned) i);
        dispatch(name, 1000 + i);
    }

    s = swap("other");
    ok(sh.resident.nswaps == NGX_HTTP_SEADRAGON_SWAP_MODELS + 1
       && s != NULL && s->dispatched == 10 && s->predicted == 10,
       "beyond %d models, \"other\" counts the rest",
       NGX_HTTP_SEADRAGON_SWAP_MODELS);
    ok(swap("m0:1")->dispatched == 1, "the first models keep their counts");

    /* servers: at most NGX_HTTP_SEADRAGON_SERVERS */

    reset(1);

    for (i = 0; i < NGX_HTTP_SEADRAGON_SERVERS + 3; i++) {
        snprintf(name, sizeof(name), "10.0.0.%u:11434", (unsigned) i);
        answer(name, "a", 0, 1000 + i);
    }

    ok(sh.resident.nservers == NGX_HTTP_SEADRAGON_SERVERS
       && strcmp(view(), "a:latest") == 0,
       "beyond %d servers, answers still feed the gate's view",
       NGX_HTTP_SEADRAGON_SERVERS);

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
