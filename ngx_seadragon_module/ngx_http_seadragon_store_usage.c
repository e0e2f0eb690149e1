
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's "usage" database (see ngx_http_seadragon_store_codec.h):
 * what each principal used of each model on each day, written by the
 * gateway in batches and read by its admin API and by seadragon-store.
 * Plain C on LMDB, shared by the module and the tool.
 */


#include "ngx_http_seadragon_store_codec.h"

#include <errno.h>
#include <string.h>


int
seadragon_usage_open(MDB_txn *txn, seadragon_store_dbs_t *dbs)
{
    if (dbs->usage) {
        return MDB_SUCCESS;
    }

    return mdb_dbi_open(txn, SEADRAGON_STORE_DB_USAGE, MDB_CREATE,
                        &dbs->usage);
}


/*
 * The "usage" database for a read in txn: a store made before usage was
 * counted gets it from the first write, maybe another process's, after
 * this one opened its dbs; it is looked for in txn then (the handle ends
 * with the transaction).  MDB_SUCCESS, MDB_NOTFOUND: none yet, or an
 * LMDB error.
 */

int
seadragon_usage_dbi(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    MDB_dbi *dbi)
{
    if (dbs->usage) {
        *dbi = dbs->usage;
        return MDB_SUCCESS;
    }

    return mdb_dbi_open(txn, SEADRAGON_STORE_DB_USAGE, 0, dbi);
}


size_t
seadragon_usage_key(uint32_t day, const char *principal, size_t plen,
    const char *model, size_t mlen, uint8_t *key)
{
    uint8_t  *p;

    /*
     * The principal ends at the first NUL; the model, whatever a client
     * named it, may hold NULs of its own (a model "a\u0000b" behind an
     * engine that takes any name), which the parse keeps.
     */

    if (plen == 0 || plen > SEADRAGON_USAGE_PRINCIPAL_LEN
        || mlen > SEADRAGON_USAGE_MODEL_LEN
        || memchr(principal, '\0', plen) != NULL)
    {
        return 0;
    }

    p = key;
    *p++ = (uint8_t) (day >> 24);
    *p++ = (uint8_t) (day >> 16);
    *p++ = (uint8_t) (day >> 8);
    *p++ = (uint8_t) day;

    memcpy(p, principal, plen);
    p += plen;
    *p++ = '\0';

    memcpy(p, model, mlen);
    p += mlen;

    return p - key;
}


int
seadragon_usage_key_parse(const MDB_val *key, uint32_t *day,
    const char **principal, size_t *plen, const char **model, size_t *mlen)
{
    const uint8_t  *p, *nul;

    p = key->mv_data;

    if (key->mv_size < 4 + 1 + 1 || key->mv_size > SEADRAGON_USAGE_KEY_LEN) {
        return -1;
    }

    *day = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];

    nul = memchr(p + 4, '\0', key->mv_size - 4);
    if (nul == NULL || nul == p + 4) {
        return -1;
    }

    *principal = (const char *) p + 4;
    *plen = nul - (p + 4);
    *model = (const char *) nul + 1;
    *mlen = key->mv_size - (nul + 1 - p);

    return 0;
}


int
seadragon_usage_record(const MDB_val *value, seadragon_usage_record_t *record)
{
    if (value->mv_size != sizeof(seadragon_usage_record_t)) {
        return MDB_CORRUPTED;
    }

    memcpy(record, value->mv_data, sizeof(seadragon_usage_record_t));

    return record->version == 1 ? 0 : MDB_CORRUPTED;
}


uint64_t
seadragon_usage_count_add(uint64_t a, uint64_t b)
{
    if (a >= SEADRAGON_USAGE_COUNT_MAX
        || b >= SEADRAGON_USAGE_COUNT_MAX - a)
    {
        return SEADRAGON_USAGE_COUNT_MAX;
    }

    return a + b;
}


void
seadragon_usage_record_sum(seadragon_usage_record_t *to,
    const seadragon_usage_record_t *delta)
{
    to->flags |= delta->flags;
    to->requests = seadragon_usage_count_add(to->requests, delta->requests);
    to->prompt_tokens = seadragon_usage_count_add(to->prompt_tokens,
                                                  delta->prompt_tokens);
    to->completion_tokens = seadragon_usage_count_add(to->completion_tokens,
                                                      delta->completion_tokens);
    to->generation_ms = seadragon_usage_count_add(to->generation_ms,
                                                  delta->generation_ms);
    to->prompt_ms = seadragon_usage_count_add(to->prompt_ms,
                                              delta->prompt_ms);
    to->load_ms = seadragon_usage_count_add(to->load_ms, delta->load_ms);
    to->estimated = seadragon_usage_count_add(to->estimated,
                                              delta->estimated);
}


int
seadragon_usage_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    uint32_t day, const char *principal, size_t plen, const char *model,
    size_t mlen, const seadragon_usage_record_t *delta)
{
    int                       rc;
    uint8_t                   key[SEADRAGON_USAGE_KEY_LEN];
    MDB_val                   k, v;
    seadragon_usage_record_t  record;

    k.mv_size = seadragon_usage_key(day, principal, plen, model, mlen, key);
    k.mv_data = key;

    if (k.mv_size == 0 || dbs->usage == 0) {
        return EINVAL;
    }

    rc = mdb_get(txn, dbs->usage, &k, &v);

    if (rc == MDB_NOTFOUND) {
        memset(&record, 0, sizeof(record));

    } else if (rc != MDB_SUCCESS) {
        return rc;

    } else {
        rc = seadragon_usage_record(&v, &record);
        if (rc != 0) {
            return rc;
        }
    }

    record.version = 1;
    seadragon_usage_record_sum(&record, delta);

    v.mv_data = &record;
    v.mv_size = sizeof(record);

    return mdb_put(txn, dbs->usage, &k, &v, 0);
}


int
seadragon_usage_sum(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    uint32_t day, const char *principal, size_t plen,
    seadragon_usage_record_t *sum)
{
    int                       rc;
    size_t                    len;
    uint8_t                   prefix[SEADRAGON_USAGE_KEY_LEN];
    MDB_val                   k, v;
    MDB_dbi                   dbi;
    MDB_cursor               *cur;
    seadragon_usage_record_t  record;

    memset(sum, 0, sizeof(seadragon_usage_record_t));
    sum->version = 1;

    rc = seadragon_usage_dbi(txn, dbs, &dbi);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    /* the key with an empty model is the prefix of all of its models */

    len = seadragon_usage_key(day, principal, plen, "", 0, prefix);
    if (len == 0) {
        return EINVAL;
    }

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = prefix;
    k.mv_size = len;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size < len || memcmp(k.mv_data, prefix, len) != 0) {
            break;
        }

        rc = seadragon_usage_record(&v, &record);
        if (rc != 0) {
            break;
        }

        seadragon_usage_record_sum(sum, &record);
    }

    mdb_cursor_close(cur);

    return (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) ? 0 : rc;
}


/* days since 1970-01-01 and the civil date, after Howard Hinnant's
 * days_from_civil / civil_from_days */

void
seadragon_usage_day_format(uint32_t day, char *buf)
{
    long      z, era, doe, yoe, y, doy, mp, d, m;

    z = (long) day + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);

    y %= 10000;

    buf[0] = (char) ('0' + y / 1000);
    buf[1] = (char) ('0' + y / 100 % 10);
    buf[2] = (char) ('0' + y / 10 % 10);
    buf[3] = (char) ('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char) ('0' + m / 10);
    buf[6] = (char) ('0' + m % 10);
    buf[7] = '-';
    buf[8] = (char) ('0' + d / 10);
    buf[9] = (char) ('0' + d % 10);
    buf[10] = '\0';
}


int
seadragon_usage_day_parse(const char *text, size_t len, uint32_t *day)
{
    long      y, m, d, era, yoe, doy, doe, n;
    size_t    i;
    char      back[11];

    if (len != 10 || text[4] != '-' || text[7] != '-') {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9')) {
            return -1;
        }
    }

    y = (text[0] - '0') * 1000 + (text[1] - '0') * 100
        + (text[2] - '0') * 10 + (text[3] - '0');
    m = (text[5] - '0') * 10 + (text[6] - '0');
    d = (text[8] - '0') * 10 + (text[9] - '0');

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return -1;
    }

    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    n = era * 146097 + doe - 719468;

    /* 2026-02-31 is no day: it must come back as it went in */

    seadragon_usage_day_format((uint32_t) n, back);

    if (memcmp(back, text, 10) != 0) {
        return -1;
    }

    *day = (uint32_t) n;

    return 0;
}
