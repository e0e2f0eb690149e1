# The admin API: the queue in dispatch order, the counters of every way a
# request ends, the gate's maintenance controls, and who may use them.
use lib 't/lib';
use Test::Seadragon;

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

store_init();
sub tool { store_tool(@_) }
our $admin = tool('key create ops --source admin');
our $user = tool('key create alice --source coding');
tool('whitelist add 127.0.0.1');

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m max_wait=$TEST_NGINX_MAX_WAIT max_queued=5;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
_EOC_
$ENV{TEST_NGINX_MAX_WAIT} = '600s';

our $config = <<'_EOC_';
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# chat($tag): the harness's, for one token at once
chat_defaults('X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);

sub admin {
    my ($what, %opts) = @_;
    my $method = delete $opts{method} // 'GET';
    my $r = request("$method /api/admin/$what",
        headers => { Authorization => "Bearer $admin" }, %opts);
    return $r->{status} == 200 ? json_decode($r->{body}) : $r;
}


run_tests();

__DATA__

=== TEST 1: the queue lists what holds the gate and what waits, in dispatch order
--- client
    my $hold = hold_gate();
    my @h;
    my $n = 1;
    for my $tag (qw(api1 coding1 chat1 coding2)) {
        push @h, chat($tag);
        $n++;
        wait_until(sub { queued_count() == $n }, "$tag to queue");
    }
    my $q1 = admin('queue');
    select undef, undef, undef, 0.3;
    my $q2 = admin('queue');
    standin_release();
    wait_all($hold, @h);
    my @e = @{ $q1->{entries} };
    join "\n",
        "gate=$q1->{gate} capacity=$q1->{capacity} length=$q1->{queue_length} processing=$q1->{processing}",
        "running: " . join(",", map { "#$_->{id} $_->{source} $_->{model} $_->{client}" } @{ $q1->{running} }),
        map({ "$_->{position}: #$_->{id} $_->{source} p$_->{priority} $_->{model} $_->{client}" } @e),
        "waits grow: " . ($q2->{entries}[0]{wait_time} > $q1->{entries}[0]{wait_time} ? 'yes' : 'no'),
        "after: " . admin('queue')->{queue_length};
--- client_output
gate=open capacity=1 length=4 processing=1
running: #1 api llama3:70b 127.0.0.1
1: #3 coding p1 llama3:70b 127.0.0.1
2: #5 coding p1 llama3:70b 127.0.0.1
3: #4 chat p2 llama3:70b 127.0.0.1
4: #2 api p3 llama3:70b 127.0.0.1
waits grow: yes
after: 0



=== TEST 2: the counters say how every request ended, and add up
--- http_config eval
(my $c = $::http_config) =~ s/if=\$http_x_coding;/if=\$http_x_coding key;/;
$c =~ s/seadragon_source api    priority=3;/seadragon_source api    priority=3 whitelist;/;
$c
--- client
    # served, and an upstream error
    wait_request(chat('api1'));
    wait_request(chat('api2', 'X-Standin-Fail' => '500'));
    # rejected: invalid JSON, a forged coding claim, a full queue
    request('POST /api/chat', body => '{"model":');
    request('POST /api/chat', body => '{"model":"llama3:70b"}', headers => { 'X-Coding' => 1 });
    my $hold = hold_gate('chat-hold');
    my @wait = map { chat("chat$_") } 1 .. 5;
    wait_until(sub { admin('queue')->{queue_length} == 5 }, 'five to wait');
    my $full = wait_request(chat('chat6'));
    # aborted while parked, then while streaming
    abort_request(shift @wait);
    wait_until(sub { admin('queue')->{queue_length} == 4 }, 'the leaver to leave');
    standin_release();
    wait_all($hold, @wait);
    my $streaming = chat('api3', 'X-Standin-Tokens' => 100, 'X-Standin-Delay-Ms' => 50);
    wait_until(sub { my @r = grep { ($_->{tag} // '') eq 'api3' } @{ standin_requests() };
                     @r && $r[0]{tokens_sent} >= 2 }, 'api3 to stream');
    abort_request($streaming);
    wait_until(sub { admin('stats')->{sources}{api}{aborted}{streaming} == 1 }, 'the abort to count');
    my $s = admin('stats')->{sources};
    my @out;
    for my $name (qw(coding chat api)) {
        my $c = $s->{$name};
        my $rejected = 0;
        $rejected += $_ for values %{ $c->{rejected} };
        my $ended = $c->{served} + $c->{upstream_errors} + $rejected
                    + $c->{aborted}{parked} + $c->{aborted}{streaming};
        push @out, sprintf "%s: received=%d served=%d errors=%d key=%d invalid=%d full=%d parked=%d streaming=%d adds_up=%s",
            $name, $c->{received}, $c->{served}, $c->{upstream_errors}, $c->{rejected}{key},
            $c->{rejected}{invalid}, $c->{rejected}{queue_full}, $c->{aborted}{parked},
            $c->{aborted}{streaming}, ($ended == $c->{received} ? 'yes' : "no ($ended)");
    }
    join "\n", "full: $full->{status}", @out;
--- client_output
full: 503
coding: received=1 served=0 errors=0 key=1 invalid=0 full=0 parked=0 streaming=0 adds_up=yes
chat: received=7 served=5 errors=0 key=0 invalid=0 full=1 parked=1 streaming=0 adds_up=yes
api: received=4 served=1 errors=1 key=0 invalid=1 full=0 parked=0 streaming=1 adds_up=yes



=== TEST 3: a request that waits too long is counted as a wait timeout
--- http_config eval
(my $c = $::http_config) =~ s/max_wait=\$TEST_NGINX_MAX_WAIT/max_wait=300ms/;
$c
--- client
    my $hold = hold_gate();
    my $late = wait_request(chat('api1'));
    release_gate($hold);
    my $c = admin('stats')->{sources}{api};
    "$late->{status} timeout=$c->{rejected}{wait_timeout} served=$c->{served} received=$c->{received}";
--- client_output: 503 timeout=1 served=1 received=2



=== TEST 4: pause holds new requests in line while what runs finishes; resume serves them in order
--- workers: 2
--- client
    my $running = hold_gate(sub { chat('api0', 'X-Standin-Tokens' => 3,
                                      'X-Standin-Delay-Ms' => 100) });
    my $p = admin('gate/pause', method => 'POST');
    my @h = (chat('api1'), chat('coding1'));
    wait_until(sub { admin('queue')->{queue_length} == 2 }, 'two to wait');
    my $r0 = wait_request($running);
    select undef, undef, undef, 0.3;
    my $during = scalar @{ standin_requests() };
    my $state = admin('queue')->{gate};
    admin('gate/resume', method => 'POST');
    my @r = wait_all(@h);
    join " ", "paused=$p->{gate}", "state=$state", "r0=$r0->{status}", "reached_ollama_while_paused=" . ($during - 1),
        map({ $_->{status} } @r), join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output: paused=paused state=paused r0=200 reached_ollama_while_paused=0 200 200 api0,coding1,api1



=== TEST 5: drain refuses new requests with 503 and Retry-After until resumed
--- client
    my $d = admin('gate/drain', method => 'POST');
    my $r = wait_request(chat('api1'));
    my $q = admin('queue');
    admin('gate/resume', method => 'POST');
    my $after = wait_request(chat('api2'));
    join "\n", "$d->{gate} $q->{gate}",
        "$r->{status} retry-after=$r->{headers}{'retry-after'} $r->{body}",
        $after->{status}, admin('stats')->{sources}{api}{rejected}{draining};
--- client_output
draining draining
503 retry-after=30 {"error":"server busy, please try again.  the gateway is draining for maintenance"}
200
1
--- error_log
seadragon zone "ollama": gate set to draining



=== TEST 6: the admin API wants an admin key
--- client
    my @out;
    for my $h ({}, { Authorization => "Bearer $user" },
               { Authorization => 'Bearer sd-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
               { 'X-API-Key' => $admin })
    {
        my $r = request('GET /api/admin/queue', headers => $h);
        push @out, "$r->{status} " . ($r->{headers}{'www-authenticate'} // '-') . " "
            . ($r->{status} == 200 ? 'ok' : $r->{body});
    }
    join "\n", @out;
--- client_output
401 Bearer {"error":"admin key required"}
403 - {"error":"not an admin key"}
401 Bearer {"error":"invalid admin key"}
200 - ok



=== TEST 7: reading endpoints take GET, controls take POST, others are 404, all in JSON
--- client
    my @out;
    for my $case ([ 'POST', 'queue' ], [ 'DELETE', 'stats' ], [ 'GET', 'gate/pause' ],
                  [ 'POST', 'gate/open' ], [ 'GET', 'nothing' ])
    {
        my $r = admin($case->[1], method => $case->[0]);
        push @out, "$case->[0] $case->[1]: $r->{status} " . ($r->{headers}{allow} // '-')
            . " $r->{headers}{'content-type'} $r->{body}";
    }
    join "\n", @out;
--- client_output
POST queue: 405 GET, HEAD application/json {"error":"this endpoint only reads: use GET"}
DELETE stats: 405 GET, HEAD application/json {"error":"this endpoint only reads: use GET"}
GET gate/pause: 405 POST application/json {"error":"gate controls take POST"}
POST gate/open: 404 - application/json {"error":"no such gate control: use pause, resume or drain"}
GET nothing: 404 - application/json {"error":"no such admin endpoint: use queue, stats, usage, models, history, tenants, gate/pause|resume|drain, whitelist, keys or users"}



=== TEST 8: auth=nginx leaves the decision to the location's own access checks
--- config
    location /api/admin/ {
        deny all;
        seadragon_admin ollama auth=nginx;
    }
--- request
GET /api/admin/queue
--- error_code: 403
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":"forbidden"}



=== TEST 9: the whitelist through the admin API, with the tool's rules, seen by the tool
--- client
    my @out;
    my $add = sub {
        my ($body) = @_;
        my $r = request('POST /api/admin/whitelist', body => $body,
            headers => { Authorization => "Bearer $admin" });
        push @out, "add $body: $r->{status} $r->{body}";
    };
    $add->('{"address":"10.9.0.0/16","note":"lab"}');
    $add->('{"address":"10.9.0.0/16"}');
    $add->('{"address":"10.9.0.1/16"}');
    $add->('{"address":"not-an-ip"}');
    $add->('{"note":"nothing"}');
    $add->('[1]');
    $add->('{"address":"10.8.0.0/16","note":"a\\tb"}');
    my $list = admin('whitelist');
    push @out, "listed: " . join(",", map { "$_->{address}($_->{note})" }
                                      grep { $_->{address} ne '127.0.0.1' } @{ $list->{whitelist} });
    push @out, "tool: " . tool('whitelist check 10.9.4.4');
    my $del = admin('whitelist/10.9.0.0/16', method => 'DELETE');
    push @out, "delete: " . json_encode($del);
    my $again = admin('whitelist/10.9.0.0/16', method => 'DELETE');
    push @out, "again: $again->{status} $again->{body}";
    join "\n", @out;
--- client_output
add {"address":"10.9.0.0/16","note":"lab"}: 201 {"whitelisted":"10.9.0.0/16"}
add {"address":"10.9.0.0/16"}: 409 {"error":"10.9.0.0/16 is already whitelisted"}
add {"address":"10.9.0.1/16"}: 400 {"error":"invalid address \"10.9.0.1/16\": the address has host bits set beyond its prefix length"}
add {"address":"not-an-ip"}: 400 {"error":"invalid address \"not-an-ip\": not an IP address or CIDR range"}
add {"note":"nothing"}: 400 {"error":"\"address\" is missing: an address or CIDR range"}
add [1]: 400 {"error":"Invalid JSON: expected an object"}
add {"address":"10.8.0.0/16","note":"a\tb"}: 400 {"error":"the note may not contain control characters"}
listed: 10.9.0.0/16(lab)
tool: 10.9.4.4 is whitelisted (by 10.9.0.0/16)
delete: {"removed":"10.9.0.0/16"}
again: 404 {"error":"10.9.0.0/16 is not whitelisted"}



=== TEST 10: keys through the admin API: created once, listed without secrets, disabled, revoked
--- client
    my $post = sub {
        my ($path, $body) = @_;
        request("POST /api/admin/$path", body => $body // '',
            headers => { Authorization => "Bearer $admin" });
    };
    my $c = $post->('keys', '{"name":"bob","source":"coding","expires_in":3600}');
    my $k = json_decode($c->{body});
    my $dup = $post->('keys', '{"name":"bob","source":"coding"}');
    my $bad = $post->('keys', '{"name":"b o b","source":"coding"}');
    my $ok1 = request('POST /api/chat', body => '{"model":"llama3:70b","messages":[],"stream":false}',
        headers => { Authorization => "Bearer $k->{key}", 'X-Standin-Tokens' => 1 });
    my $list = admin('keys');
    my ($bob) = grep { $_->{name} eq 'bob' } @{ $list->{keys} };
    my $dis = $post->('keys/bob/disable');
    my $refused = request('POST /api/chat', body => '{"model":"llama3:70b","messages":[]}',
        headers => { Authorization => "Bearer $k->{key}" });
    my $rev = admin('keys/bob', method => 'DELETE');
    my $gone = admin('keys/bob', method => 'DELETE');
    my $tool_list = tool('key list');
    join "\n", "$c->{status} $k->{name} $k->{source} " . ($k->{key} =~ /^sd-[A-Za-z0-9_-]{43}$/ ? 'key' : 'no-key')
            . " expires=" . ($k->{expires} - time() > 3500 ? 'set' : 'unset'),
        "dup: $dup->{status} $dup->{body}", "bad: $bad->{status}",
        "used: $ok1->{status}",
        "listed: $bob->{source} $bob->{state} " . (json_encode($list) =~ /sd-/ ? 'LEAKS' : 'no-secret'),
        "disable: $dis->{status} $dis->{body}", "refused: $refused->{status} $refused->{body}",
        "revoke: " . json_encode($rev), "again: $gone->{status} $gone->{body}",
        "tool sees: " . ($tool_list =~ /^bob\t/m ? 'bob' : 'no bob');
--- client_output
201 bob coding key expires=set
dup: 409 {"error":"a key with this name already exists; revoke it first or choose another name"}
bad: 400
used: 200
listed: coding active no-secret
disable: 200 {"disabled":"bob"}
refused: 401 {"error":"API key disabled"}
revoke: {"revoked":"bob"}
again: 404 {"error":"there is no key with this name"}
tool sees: no bob



=== TEST 11: admin keys need a store, unless auth=nginx
--- http_config
    seadragon_zone ollama:1m;
--- config
    location /api/admin/ { seadragon_admin ollama; }
--- must_die
--- error_log
"seadragon_admin" in



=== TEST 12: seadragon_admin names its parameters
--- config
    location /api/admin/ { seadragon_admin ollama auth=password; }
--- must_die
--- error_log
invalid parameter "auth=password": expected auth=key
