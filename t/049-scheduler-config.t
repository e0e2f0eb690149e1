# The scheduler's configuration (issue 15): seadragon_zone's fair=,
# tenant=, prompt_weight=, completion_weight=, affinity= and loaded=, and
# seadragon_model ZONE MODEL slots=N.  What is accepted serves; every
# misuse is an `nginx -t` error that names the parameter or the directive
# and says what was expected.  The scheduling itself is t/042-fair.t's and
# t/043-models.t's.
use lib 't/lib';
use Test::Seadragon;

run_tests();

__DATA__

=== TEST 1: every scheduler parameter and seadragon_model lines pass nginx -t, the zone declared after the models
--- http_config
    seadragon_model gate nomic-embed-text slots=1;
    seadragon_model gate llama3:70b slots=2;
    seadragon_zone gate:1m capacity=2 fair=tokens tenant=$binary_remote_addr
                   prompt_weight=1 completion_weight=4 affinity=30s loaded=2;
--- config
    location /api/ { seadragon_queue gate; return 200 "ok"; }
--- request
GET /api/tags
--- response_body: ok



=== TEST 2: fair=requests, a constant tenant, affinity=off and both weights 0 are accepted (weights count only with fair=tokens)
--- http_config
    seadragon_zone gate:1m fair=requests tenant=everyone affinity=off
                   prompt_weight=0 completion_weight=0 loaded=8;
--- config
    location /api/ { seadragon_queue gate; return 200 "ok"; }
--- request
GET /api/tags
--- response_body: ok



=== TEST 3: fair=off, affinity=0 and one weight 0 with fair=tokens are accepted
--- http_config
    seadragon_zone gate:1m fair=off affinity=0;
    seadragon_zone other:1m fair=tokens prompt_weight=0;
--- config
    location /api/ { seadragon_queue gate; return 200 "ok"; }
    location /v1/ { seadragon_queue other; return 200 "ok"; }
--- request
GET /api/tags
--- response_body: ok



=== TEST 4: fair takes off, tokens or requests
--- http_config
    seadragon_zone gate:1m fair=on;
--- config
--- must_die
--- error_log
invalid "fair=on": fair must be off, tokens (shares by tokens served) or requests (shares by requests)



=== TEST 5: tenant= cannot be empty
--- http_config
    seadragon_zone gate:1m fair=tokens tenant=;
--- config
--- must_die
--- error_log
invalid "tenant=": tenant must be a value, such as $binary_remote_addr, that tells who a request without a key is



=== TEST 6: tenant= names a variable nginx knows
--- http_config
    seadragon_zone gate:1m fair=tokens tenant=$no_such_variable;
--- config
--- must_die
--- error_log
unknown "no_such_variable" variable



=== TEST 7: prompt_weight must be 0 to 1000
--- http_config
    seadragon_zone gate:1m fair=tokens prompt_weight=1001;
--- config
--- must_die
--- error_log
invalid "prompt_weight=1001": prompt_weight must be a whole number from 0 to 1000, what a prompt token counts for in fair=tokens



=== TEST 8: completion_weight must be a whole number
--- http_config
    seadragon_zone gate:1m fair=tokens completion_weight=-1;
--- config
--- must_die
--- error_log
invalid "completion_weight=-1": completion_weight must be a whole number from 0 to 1000, what a completion token counts for in fair=tokens



=== TEST 9: fair=tokens with both weights 0 would count nothing
--- http_config
    seadragon_zone gate:1m fair=tokens prompt_weight=0 completion_weight=0;
--- config
--- must_die
--- error_log
seadragon zone "gate" has fair=tokens with prompt_weight=0 and completion_weight=0: no token would count; give one of them a weight of 1 or more, or use fair=requests



=== TEST 10: affinity must be a time or off
--- http_config
    seadragon_zone gate:1m affinity=always;
--- config
--- must_die
--- error_log
invalid "affinity=always": affinity must be a time, such as 30s (the longest a request may be passed over for one whose model is loaded), or off



=== TEST 11: loaded must be 1 to 8
--- http_config
    seadragon_zone gate:1m loaded=0;
--- config
--- must_die
--- error_log
invalid "loaded=0": loaded must be a whole number from 1 to 8, the models the server holds at once (OLLAMA_MAX_LOADED_MODELS)



=== TEST 12: loaded beyond 8 is refused
--- http_config
    seadragon_zone gate:1m loaded=9;
--- config
--- must_die
--- error_log
invalid "loaded=9": loaded must be a whole number from 1 to 8



=== TEST 13: an unknown zone parameter lists the new ones
--- http_config
    seadragon_zone gate:1m fairness=tokens;
--- config
--- must_die
--- error_log
invalid parameter "fairness=tokens": expected capacity=, tick=, max_queued=, max_queued_per_client=, max_wait=, aging=, fair=, tenant=, prompt_weight=, completion_weight=, affinity= or loaded=



=== TEST 14: seadragon_model needs a zone that is declared
--- http_config
    seadragon_zone gate:1m;
    seadragon_model gpu nomic-embed-text slots=1;
--- config
--- must_die
--- error_log eval
qr/"seadragon_model" uses the unknown seadragon zone "gpu" in \S+nginx\.conf:\d+; declare it with "seadragon_zone gpu:SIZE"/



=== TEST 15: a model twice for a zone is refused, a name without a tag being ":latest"
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_model gate nomic-embed-text slots=1;
    seadragon_model gate nomic-embed-text:latest slots=2;
--- config
--- must_die
--- error_log eval
qr/duplicate seadragon_model "nomic-embed-text:latest" for the zone "gate", first in \S+nginx\.conf:\d+/



=== TEST 16: the same model in two zones is two models
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_zone other:1m capacity=2;
    seadragon_model gate nomic-embed-text slots=1;
    seadragon_model other nomic-embed-text slots=2;
--- config
    location /api/ { seadragon_queue gate; return 200 "ok"; }
    location /v1/ { seadragon_queue other; return 200 "ok"; }
--- request
GET /api/tags
--- response_body: ok



=== TEST 17: slots must be 1 to 1024
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_model gate nomic-embed-text slots=0;
--- config
--- must_die
--- error_log
invalid "slots=0": slots must be a whole number from 1 to 1024, the requests of this model that may run at once



=== TEST 18: slots beyond 1024 are refused
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_model gate nomic-embed-text slots=1025;
--- config
--- must_die
--- error_log
invalid "slots=1025": slots must be a whole number from 1 to 1024



=== TEST 19: the third argument must be slots=N
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_model gate nomic-embed-text capacity=1;
--- config
--- must_die
--- error_log
invalid parameter "capacity=1": expected slots=N, the requests of this model that may run at once



=== TEST 20: seadragon_model takes exactly a zone, a model and slots=N
--- http_config
    seadragon_zone gate:1m capacity=2;
    seadragon_model gate nomic-embed-text;
--- config
--- must_die
--- error_log
invalid number of arguments in "seadragon_model" directive



=== TEST 21: slots beyond the zone's capacity could never be used
--- http_config
    seadragon_model gate nomic-embed-text slots=3;
    seadragon_zone gate:1m capacity=2;
--- config
--- must_die
--- error_log eval
qr/seadragon_model "nomic-embed-text:latest" has slots=3, more than the capacity=2 of its zone "gate", so they could never all run, in \S+nginx\.conf:\d+; give it at most slots=2/



=== TEST 22: a model name of other characters is refused
--- http_config
    seadragon_zone gate:1m;
    seadragon_model gate "llama 3" slots=1;
--- config
--- must_die
--- error_log
invalid model name "llama 3": expected a model such as "nomic-embed-text" or "llama3:70b", of letters, digits and "_-.:/"



=== TEST 23: a model name with an empty tag is refused
--- http_config
    seadragon_zone gate:1m;
    seadragon_model gate llama3: slots=1;
--- config
--- must_die
--- error_log
invalid model name "llama3:"



=== TEST 24: a model name longer than 63 bytes is refused
--- http_config
    seadragon_zone gate:1m;
    seadragon_model gate abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde slots=1;
--- config
--- must_die
--- error_log
invalid model name "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde": it must have 1 to 63 bytes



=== TEST 25: at most 16 models a zone
--- http_config eval
"    seadragon_zone gate:1m capacity=2;\n"
. join('', map { "    seadragon_model gate m$_ slots=1;\n" } 1 .. 17)
--- config
--- must_die
--- error_log
too many seadragon_model lines for the zone "gate": at most 16



=== TEST 26: seadragon_model belongs in http{}
--- http_config
    seadragon_zone gate:1m;
--- config
    location /api/ { seadragon_model gate m1 slots=1; return 200 "ok"; }
--- must_die
--- error_log
"seadragon_model" directive is not allowed here
