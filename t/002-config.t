# Every misuse of a directive is an `nginx -t` error that names it and says
# what was expected.
use lib 't/lib';
use Test::Seadragon;

run_tests();

__DATA__

=== TEST 1: a complete configuration passes nginx -t
--- http_config
    seadragon_zone ollama:1m capacity=2 tick=10ms max_queued=10 max_wait=30s;
    seadragon_source coding priority=1 if=$http_x_coding max_queued=5;
    seadragon_source api priority=3;
--- config
    location /api/ { seadragon_queue ollama; return 200 "ok"; }
--- request
GET /api/tags
--- response_body: ok



=== TEST 2: a zone needs NAME:SIZE
--- http_config
    seadragon_zone ollama;
--- config
--- must_die
--- error_log
"seadragon_zone" directive takes a zone as "NAME:SIZE"



=== TEST 3: a zone size must be a size
--- http_config
    seadragon_zone ollama:lots;
--- config
--- must_die
--- error_log
invalid zone size "ollama:lots"



=== TEST 4: a zone must be large enough
--- http_config
    seadragon_zone ollama:4k;
--- config
--- must_die
--- error_log
zone "ollama:4k" is too small



=== TEST 5: capacity must be at least 1
--- http_config
    seadragon_zone ollama:1m capacity=0;
--- config
--- must_die
--- error_log
invalid "capacity=0": capacity must be a whole number of requests, at least 1



=== TEST 6: tick must be a time from 1ms to 10s
--- http_config
    seadragon_zone ollama:1m tick=1m;
--- config
--- must_die
--- error_log
invalid "tick=1m": tick must be a time from 1ms to 10s



=== TEST 7: max_wait must be a time
--- http_config
    seadragon_zone ollama:1m max_wait=soon;
--- config
--- must_die
--- error_log
invalid "max_wait=soon": max_wait must be a time



=== TEST 8: max_queued must be a positive number
--- http_config
    seadragon_zone ollama:1m max_queued=-1;
--- config
--- must_die
--- error_log
invalid "max_queued=-1": max_queued must be a whole number, at least 1



=== TEST 9: unknown zone parameters are named
--- http_config
    seadragon_zone ollama:1m speed=fast;
--- config
--- must_die
--- error_log
invalid parameter "speed=fast": expected capacity=, tick=, max_queued=, max_queued_per_client=, max_wait=, aging=, fair=, tenant=, prompt_weight=, completion_weight=, affinity= or loaded=



=== TEST 10: a zone is declared once
--- http_config
    seadragon_zone ollama:1m;
    seadragon_zone ollama:2m;
--- config
--- must_die
--- error_log
duplicate seadragon zone "ollama"



=== TEST 11: seadragon_zone belongs to the http block
--- config
    seadragon_zone ollama:1m;
--- must_die
--- error_log
"seadragon_zone" directive is not allowed here



=== TEST 12: a queue must use a declared zone
--- config
    location /api/ { seadragon_queue nowhere; }
--- must_die
--- error_log
"seadragon_queue" uses the unknown seadragon zone "nowhere"



=== TEST 13: a queue may name its zone before it is declared
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        server_name early;
        location / { seadragon_queue late; }
    }
    seadragon_zone late:1m;
--- config
    location /t { return 200 "fine"; }
--- request
GET /t
--- response_body: fine



=== TEST 14: seadragon_queue is not repeated in one place
--- http_config
    seadragon_zone ollama:1m;
--- config
    location /api/ { seadragon_queue ollama; seadragon_queue ollama; }
--- must_die
--- error_log
"seadragon_queue" directive is duplicate



=== TEST 15: a queue location cannot use satisfy any
--- http_config
    seadragon_zone ollama:1m;
--- config
    location /api/ { satisfy any; allow 127.0.0.1; deny all; seadragon_queue ollama; }
--- must_die
--- error_log
"seadragon_queue" cannot be used with "satisfy any"



=== TEST 16: a source needs a priority
--- http_config
    seadragon_source api;
--- config
--- must_die
--- error_log
invalid number of arguments in "seadragon_source" directive



=== TEST 17: a source with parameters but no priority is refused
--- http_config
    seadragon_source api max_queued=3;
--- config
--- must_die
--- error_log
seadragon source "api" needs a priority, such as priority=1



=== TEST 18: priority must be a number from 0 to 1000
--- http_config
    seadragon_source api priority=high;
--- config
--- must_die
--- error_log
invalid "priority=high": priority must be a number from 0 to 1000



=== TEST 19: source names are words
--- http_config
    seadragon_source "my api" priority=1;
--- config
--- must_die
--- error_log
invalid source name "my api": use letters, digits, "_" and "-"



=== TEST 20: source names are unique
--- http_config
    seadragon_source api priority=1 if=$http_x_a;
    seadragon_source api priority=2;
--- config
--- must_die
--- error_log
duplicate seadragon source "api"



=== TEST 21: only one source may be the default
--- http_config
    seadragon_source chat priority=2;
    seadragon_source api priority=3;
--- config
--- must_die
--- error_log
seadragon source "api" has no "if=" but "chat" is already the default source



=== TEST 22: there must be a default source
--- http_config
    seadragon_source coding priority=1 if=$http_x_coding;
--- config
--- must_die
--- error_log
no default seadragon source: one "seadragon_source" must have neither "if=" nor "key"



=== TEST 23: an empty condition is refused
--- http_config
    seadragon_source coding priority=1 if=;
--- config
--- must_die
--- error_log
empty condition in "if=": expected if=$variable



=== TEST 24: unknown source parameters are named
--- http_config
    seadragon_source coding priority=1 weight=3;
--- config
--- must_die
--- error_log
invalid parameter "weight=3": expected priority=, if=, max_queued=, max_queued_per_client=, key, login, whitelist, aging= or endpoints=



=== TEST 25: a condition with an unknown variable is refused
--- http_config
    seadragon_source coding priority=1 if=$no_such_variable;
    seadragon_source api priority=2;
--- config
--- must_die
--- error_log
unknown "no_such_variable" variable



=== TEST 26: seadragon_json_errors takes on or off
--- config
    seadragon_json_errors maybe;
--- must_die
--- error_log
invalid value "maybe" in "seadragon_json_errors" directive, it must be "on" or "off"



=== TEST 27: a source name must fit a key record (31 characters)
--- http_config
    seadragon_source abcdefghijklmnopqrstuvwxyz012345 priority=1;
--- config
--- must_die
--- error_log
invalid source name "abcdefghijklmnopqrstuvwxyz012345": it must have 1 to 31 characters



=== TEST 28: aging takes a time or off, on a zone and on a source
--- http_config
    seadragon_zone ollama:1m aging=30s;
    seadragon_source coding priority=1 if=$http_x_coding aging=off;
    seadragon_source api priority=2 aging=5s;
--- config
    location /api/ { seadragon_queue ollama; return 200 "ok"; }
--- request
GET /api/tags
--- error_code: 200



=== TEST 29: a zone's aging must be a time
--- http_config
    seadragon_zone ollama:1m aging=soon;
--- config
--- must_die
--- error_log
invalid "aging=soon": aging must be a time, such as 30s (each 30s waited is one step of priority), or off



=== TEST 30: a source's aging must not be zero
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source api priority=2 aging=0;
--- config
--- must_die
--- error_log
invalid "aging=0": aging must be a time



=== TEST 31: endpoints= takes kinds separated by commas
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source ops priority=1 if=$http_x_ops endpoints=info,manage;
    seadragon_source api priority=2 endpoints=all;
--- config
    location /api/ { seadragon_queue ollama; return 200 "ok"; }
--- request
GET /api/version
--- error_code: 200



=== TEST 32: an unknown endpoint kind is named
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source api priority=2 endpoints=generate,delete;
--- config
--- must_die
--- error_log
invalid endpoint kind "delete" in "endpoints=generate,delete": expected generate, info, manage or all, separated by commas



=== TEST 33: endpoints= cannot be empty
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source api priority=2 endpoints=;
--- config
--- must_die
--- error_log
empty "endpoints=": expected generate, info, manage or all



=== TEST 34: a source of logins ("login") needs a store, as one of keys does
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source web priority=2 if=$http_x_web login;
    seadragon_source api priority=3;
--- config
--- must_die
--- error_log
seadragon source "web" requires a login, which needs a store: add "seadragon_store PATH"



=== TEST 35: a source of logins without "if=" is reached by its users' tokens alone: it is no default
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source web priority=2 login;
--- config
--- must_die
--- error_log
no default seadragon source: one "seadragon_source" must have neither "if=" nor "key" (nor "login")
