# A request's way through a queue location: classification, body
# validation, JSON errors, the variables, and what bypasses the queue.
use lib 't/lib';
use Test::Seadragon;
use Encode ();

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
_EOC_

our $proxy = <<'_EOC_';
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host localhost;
    proxy_buffering off;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
});

run_tests();

__DATA__

=== TEST 1: a chat passes the gate and streams NDJSON from Ollama
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- request
POST /api/chat
{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}]}
--- more_headers
X-Standin-Tokens: 3
--- error_code: 200
--- response_headers
Content-Type: application/x-ndjson
--- response_body_like: ^(\{"model":"llama3:70b".*"done":false\}\n){3}\{.*"done":true.*\}\n$
--- no_error_log
[error]



=== TEST 2: the variables describe the request
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Source $seadragon_source;
        add_header X-Priority $seadragon_priority;
        add_header X-Model $seadragon_model;
        add_header X-Stream $seadragon_stream;
        add_header X-Queue-Position $seadragon_queue_position;
        add_header X-Queue-Wait-Time $seadragon_queue_wait;
        add_header X-Queue-Id $seadragon_queue_id;
    }
--- request
POST /api/generate
{"model":"llama3:70b","prompt":"hi","stream":false}
--- more_headers
X-Chat: 1
--- error_code: 200
--- response_headers
X-Source: chat
X-Priority: 2
X-Model: llama3:70b
X-Stream: false
X-Queue-Position: 1
X-Queue-Wait-Time: 0
X-Queue-Id: 1
Content-Type: application/json; charset=utf-8
--- response_body_like: "done":true



=== TEST 3: the first true condition wins, in the order of the sources
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Source $seadragon_source;
    }
--- request
POST /api/generate
{"model":"llama3:70b","prompt":"hi","stream":false}
--- more_headers
X-Chat: 1
X-Coding: yes
--- response_headers
X-Source: coding



=== TEST 4: a condition of "0" is false, and the default source is used
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Source $seadragon_source;
        add_header X-Priority $seadragon_priority;
    }
--- request
POST /api/generate
{"model":"llama3:70b","prompt":"hi","stream":false}
--- more_headers
X-Coding: 0
--- response_headers
X-Source: api
X-Priority: 3



=== TEST 5: the source is known in the access log of any location
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3;
    log_format sd "$request_uri source=$seadragon_source priority=$seadragon_priority wait=$seadragon_queue_wait";
--- config
    access_log logs/sd.log sd;
    location /plain { return 200 "plain"; }
--- request
GET /plain
--- more_headers
X-Coding: 1
--- response_body: plain
--- client
    my $log = '';
    wait_until(sub { $log = access_log_text('sd.log'); length $log }, 'the access log line');
    $log;
--- client_output_like: /plain source=coding priority=1 wait=-



=== TEST 6: invalid JSON is refused with 400 before it queues
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
    }
--- request
POST /api/chat
{"model": "llama3:70b", "messages": [
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":"Invalid JSON"}
--- client
    scalar @{ standin_requests() };
--- client_output: 0



=== TEST 7: a body that is JSON but not an object is refused
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request
POST /api/chat
["llama3:70b"]
--- error_code: 400
--- response_body chomp
{"error":"Invalid JSON: the request body must be a JSON object"}



=== TEST 8: a scalar body is refused
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request
POST /api/chat
"hello"
--- error_code: 400
--- response_body chomp
{"error":"Invalid JSON: the request body must be a JSON object"}



=== TEST 9: trailing garbage after the object is invalid JSON
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request
POST /api/chat
{"model":"llama3:70b"} {"model":"x"}
--- error_code: 400
--- response_body chomp
{"error":"Invalid JSON"}



=== TEST 10: invalid UTF-8 in a string is invalid JSON
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request eval
"POST /api/chat\n{\"model\":\"\xff\xfe\"}"
--- error_code: 400
--- response_body chomp
{"error":"Invalid JSON"}



=== TEST 11: JSON nested deeper than 512 levels is refused
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request eval
"POST /api/chat\n{\"a\":" . ("[" x 600) . ("]" x 600) . "}"
--- error_code: 400
--- response_body chomp
{"error":"Invalid JSON: nested too deeply"}



=== TEST 12: an empty body is refused as Ollama does
--- config
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- raw_request eval
"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body chomp
{"error":"missing request body"}



=== TEST 13: a body larger than client_max_body_size gets 413 in JSON
--- config
    client_max_body_size 1k;
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- request eval
"POST /api/chat\n{\"model\":\"llama3:70b\",\"prompt\":\"" . ("x" x 4096) . "\"}"
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":"request body too large: see client_max_body_size"}



=== TEST 14: a chunked body larger than client_max_body_size gets 413 in JSON
--- config
    client_max_body_size 1k;
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- raw_request eval
my $body = "{\"model\":\"llama3:70b\",\"prompt\":\"" . ("x" x 4096) . "\"}";
"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
. sprintf("%x\r\n", length $body) . $body . "\r\n0\r\n\r\n"
--- error_code: 413
--- response_body chomp
{"error":"request body too large: see client_max_body_size"}



=== TEST 15: a large body buffered to a file is validated and reaches Ollama whole
--- config
    client_body_buffer_size 1k;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Model $seadragon_model;
    }
--- request eval
"POST /api/generate\n{\"prompt\":\"" . ("y" x 100000) . "\",\"stream\":false,\"model\":\"llama3:70b\"}"
--- error_code: 200
--- response_headers
X-Model: llama3:70b
--- client
    my $r = standin_requests()->[0];
    length($r->{body}{prompt}) . " " . $r->{model};
--- client_output: 100000 llama3:70b



=== TEST 16: GET requests bypass the queue and have no queue variables
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Queue-Position $seadragon_queue_position;
        add_header X-Source $seadragon_source;
    }
--- request
GET /api/tags
--- error_code: 200
--- response_headers
!X-Queue-Position
X-Source: api
--- response_body_like: "models"



=== TEST 17: an unknown path in a JSON-errors server is a JSON 404
--- config
    seadragon_json_errors on;
    location / { return 404; }
--- request
GET /nothing/here
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":"not found"}



=== TEST 18: without seadragon_json_errors, other locations keep nginx's pages
--- config
    location / { return 404; }
--- request
GET /nothing/here
--- error_code: 404
--- response_headers
Content-Type: text/html
--- response_body_like: <html>



=== TEST 19: an error_page chosen by the user is left alone
--- config
    seadragon_json_errors on;
    error_page 404 /custom;
    location /custom { internal; default_type text/html; return 200 "<p>mine</p>"; }
    location / { return 404; }
--- request
GET /nothing
--- error_code: 404
--- response_body: <p>mine</p>



=== TEST 20: a JSON error answers HEAD with headers only
--- config
    seadragon_json_errors on;
    location / { return 404; }
--- request
HEAD /nothing
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body:



=== TEST 21: the request reaches Ollama with its body and headers intact
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- request
POST /api/chat
{"model":"llama3:70b","messages":[{"role":"user","content":"caf\u00e9 ☕"}],"stream":false}
--- more_headers
X-Standin-Tag: intact
--- error_code: 200
--- client
    my $r = standin_requests()->[0];
    Encode::encode_utf8(join "|", $r->{tag}, $r->{path},
                        $r->{body}{messages}[0]{content}, $r->{headers}{host});
--- client_output: intact|/api/chat|café ☕|localhost



=== TEST 22: the Host check of Ollama shows a missing proxy_set_header Host
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host ollama.example.com;
    }
--- request
POST /api/chat
{"model":"llama3:70b","messages":[]}
--- error_code: 403
