# Hostile tests of classification, the shipped configurations and what
# they log (issue 11: findings 2, 3, 11, 15 and 16).  Each block attacks
# the gateway as a stranger would, then checks the state: what Ollama
# received, the counters, the queue, the access log, the worker's pid and
# the error log, not only the status.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::TLS;

# A store without any whitelisted address: the client of these tests
# (127.0.0.1) is a stranger unless it holds a key.
our $StoreDir = store_init();
sub tool { store_tool(@_) }
our $admin_key  = tool('key create ops --source admin');
our $coding_key = tool('key create editor --source coding');
our $chat_key   = tool('key create alice-chat --source chat');

# a person of the chat source: the shipped examples' chat takes a
# logged-in user only ("login"), who logs in at the example's /auth/token
{
    my $file = "$StoreDir/password";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "chat person\n";
    close $fh;
    tool("user add alice --source chat < '$file'");
    unlink $file;
}
sub chat_token {
    my $r = request('POST /auth/token', port => $ENV{TEST_NGINX_EXAMPLE_PORT},
        body => 'username=alice&password=chat+person',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return json_decode($r->{body})->{access_token}
        // die "no token: $r->{status} $r->{body}";
}

# A gateway of its own, for the blocks about headers and variables: the
# coding source is chosen by User-Agent and needs a key, anyone else is
# "api".  Its log shows the request headers as nginx's variables see them.
our $http_config = <<'_EOC_';
    seadragon_store  $TEST_NGINX_STORE;
    seadragon_zone   ollama:1m capacity=1;

    map $http_user_agent $is_coding {
        default         0;
        "~*continue"    1;
    }

    seadragon_source coding priority=1 if=$is_coding key;
    seadragon_source chat   priority=2 key;
    seadragon_source api    priority=3;

    log_format headers 'source=$seadragon_source status=$status '
                       'key=$seadragon_key_name ua="$http_user_agent" '
                       'referer="$http_referer" host="$http_host" '
                       'other="$http_x_other" authorization="$http_authorization" '
                       'x_api_key="$http_x_api_key" stream=$seadragon_stream '
                       'uri=$uri';

    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        access_log logs/headers.log headers;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    access_log logs/headers.log headers;
    location /api/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        add_header X-Stream $seadragon_stream always;
    }
    location /v1/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/v1/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        add_header X-Stream $seadragon_stream always;
    }
    location /pass/ {
        seadragon_queue ollama;
        seadragon_pass_key on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

master_on();

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}';

# "status body", the body as one line

# The counters of the harness's gateway (auth=nginx), or of the example's
# (an admin key), as "source: received=N served=N rejected=REASON:N ...".
sub counters {
    my (%a) = @_;
    my $r = request('GET /api/admin/stats', %a);
    die "stats: " . said($r) unless $r->{status} == 200;
    my $s = json_decode($r->{body})->{sources};
    return join "\n", map {
        my $c = $s->{$_};
        my $rej = join ' ', map { "$_:$c->{rejected}{$_}" }
                            grep { $c->{rejected}{$_} } sort keys %{ $c->{rejected} };
        "$_: received=$c->{received} served=$c->{served}" . ($rej ? " rejected $rej" : '')
    } grep { $s->{$_}{received} } sort keys %$s;
}

sub queue_of {
    my (%a) = @_;
    my $q = json_decode(request('GET /api/admin/queue', %a)->{body});
    return "gate=$q->{gate} processing=$q->{processing} queue_length=$q->{queue_length}";
}

# The log lines of logs/FILE, once there are N of them.
sub log_lines {
    my ($file, $n) = @_;
    my @lines;
    wait_until(sub { @lines = split /\n/, access_log_text($file); @lines >= $n },
               "$n lines in $file");
    return @lines;
}

# Every header Ollama received that carries a key, over all its requests.
sub keys_seen_by_ollama {
    return grep { exists $_->{headers}{authorization} || exists $_->{headers}{'x-api-key'} }
           @{ standin_requests() };
}

# nginx -t on the block's configuration (never under valgrind: nginx -t
# exits without freeing its cycle, which is nginx's own leak)
sub nginx_t {
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $out = `'$nginx' -p '@{[servroot()]}/' -c conf/nginx.conf -e logs/error.log -t 2>&1`;
    return ($? >> 8, $out);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a bearer token before or after User-Agent and Referer changes nothing: same source, same $http_*, nothing reaches Ollama
The key header used to be removed by moving the later headers down, so
r->headers_in.user_agent pointed at the next header: continue/1.0 sent
after the token was classified from the wrong header (200 as api instead
of 401), and from nginx 1.23 on the worker crashed.
--- client
    my $pids = join ',', nginx_worker_pids();
    my @h = (['Host', 'localhost'], ['User-Agent', 'continue/1.0'],
             ['Referer', 'https://ref.example/page'], ['X-Other', 'other-value'],
             ['Accept', '*/*'], ['Content-Type', 'application/json']);
    my @out;
    for my $at (0 .. @h) {
        for my $token (['Authorization', 'Bearer not-a-seadragon-key'], ['X-API-Key', 'nope']) {
            my @headers = @h;
            splice @headers, $at, 0, $token;
            my $r = request('POST /api/chat', body => $::chat,
                            headers => [map { @$_ } @headers]);
            push @out, said($r);
        }
    }
    my %statuses;
    $statuses{$_}++ for @out;
    my @lines = log_lines('headers.log', scalar @out);
    my %logged;
    $logged{ $_ =~ s/^.*?(source=)/$1/r }++ for @lines;
    my @refused = grep { /seadragon: invalid API key/ } split /\n/, error_log_text();
    my @wrong = grep { !/referrer: "https:\/\/ref\.example\/page"/ } @refused;
    join "\n", (map { "$statuses{$_}x $_" } sort keys %statuses),
        (map { "$logged{$_}x $_" } sort keys %logged),
        "error log: " . scalar(@refused) . " refusals, " . scalar(@wrong) . " with another referrer",
        "ollama saw " . scalar(@{ standin_requests() }),
        counters(), queue_of(),
        "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
14x 401 {"error":"invalid API key"}
14x source=coding status=401 key=- ua="continue/1.0" referer="https://ref.example/page" host="localhost" other="other-value" authorization="-" x_api_key="-" stream=- uri=/api/chat
error log: 14 refusals, 0 with another referrer
ollama saw 0
coding: received=14 served=0 rejected key:14
gate=open processing=0 queue_length=0
workers unchanged
--- no_error_log
exited on signal



=== TEST 2: a valid key anywhere among the headers, even past the first 20: Ollama gets every other header, whole, and never the key
--- client
    my $pids = join ',', nginx_worker_pids();
    my @pad = map { ["X-Pad-$_", "pad $_"] } 1 .. 24;
    my @base = (['Host', 'localhost'], ['User-Agent', 'continue/1.0'],
                ['Referer', 'https://ref.example/page'], ['X-Other', 'other-value']);
    my @cases = (
        [['Authorization', "Bearer $::coding_key"], @base],
        [@base[0 .. 1], ['X-API-Key', $::coding_key], @base[2 .. 3]],
        [@base, ['Authorization', "Bearer $::coding_key"]],
        [@pad, ['X-API-Key', $::coding_key], @base, ['Authorization', "Bearer $::coding_key"]],
        [@base[0 .. 1], @pad[0 .. 17], ['Authorization', "Bearer $::coding_key"], @base[2 .. 3],
         ['X-API-Key', 'second-copy'], @pad[18 .. 23]],
    );
    my @out;
    for my $case (@cases) {
        my $r = request('POST /api/chat', body => $::chat, headers => [map { @$_ } @$case]);
        push @out, said($r) =~ /"done":true/ ? "$r->{status} done" : said($r);
    }
    my @seen = @{ standin_requests() };
    my @mismatch;
    for my $i (0 .. $#cases) {
        my %want = map { (lc $_->[0] => $_->[1]) }
                   grep { $_->[0] !~ /^(Authorization|X-API-Key|Host)$/ } @{ $cases[$i] };
        my $got = $seen[$i]{headers};
        for (sort keys %want) {
            push @mismatch, "request $i: $_ is " . ($got->{$_} // 'missing')
                unless defined $got->{$_} && $got->{$_} eq $want{$_};
        }
    }
    my @lines = log_lines('headers.log', scalar @cases);
    my %logged;
    $logged{ $_ =~ s/^.*?(source=)/$1/r }++ for @lines;
    join "\n", @out, (map { "$logged{$_}x $_" } sort keys %logged),
        "ollama saw " . scalar(@seen) . " requests, " . scalar(keys_seen_by_ollama()) . " with a key",
        "other headers that differ: " . (@mismatch ? join('; ', @mismatch) : 'none'),
        counters(), queue_of(),
        "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
200 done
200 done
200 done
200 done
200 done
5x source=coding status=200 key=editor ua="continue/1.0" referer="https://ref.example/page" host="localhost" other="other-value" authorization="-" x_api_key="-" stream=false uri=/api/chat
ollama saw 5 requests, 0 with a key
other headers that differ: none
coding: received=5 served=5
gate=open processing=0 queue_length=0
workers unchanged
--- no_error_log
exited on signal



=== TEST 3: over HTTP/2 the key in any place is kept from Ollama and the other headers stay whole
--- client
    my $pids = join ',', nginx_worker_pids();
    my @out;
    for my $order (["-H 'Authorization: Bearer $::coding_key' -H 'User-Agent: continue/1.0' -H 'Referer: https://ref.example/h2'"],
                   ["-H 'User-Agent: continue/1.0' -H 'Referer: https://ref.example/h2' -H 'X-API-Key: $::coding_key'"])
    {
        my $out = `curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' -X POST -d '$::chat' @$order http://127.0.0.1:$ENV{TEST_NGINX_H2_PORT}/api/chat 2>&1`;
        push @out, $out;
    }
    my @lines = log_lines('headers.log', 2);
    my %logged;
    $logged{ $_ =~ s/^.*?(source=)/$1/r =~ s/host="[^"]*"/host=H/r }++ for @lines;
    my @seen = @{ standin_requests() };
    join "\n", @out, (map { "$logged{$_}x $_" } sort keys %logged),
        "ollama saw " . scalar(@seen) . " requests, " . scalar(keys_seen_by_ollama()) . " with a key, "
        . "user agents " . join(',', map { $_->{headers}{'user-agent'} } @seen)
        . ", referers " . join(',', map { $_->{headers}{referer} } @seen),
        counters(), "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
2 200
2 200
2x source=coding status=200 key=editor ua="continue/1.0" referer="https://ref.example/h2" host=H other="-" authorization="-" x_api_key="-" stream=false uri=/api/chat
ollama saw 2 requests, 0 with a key, user agents continue/1.0,continue/1.0, referers https://ref.example/h2,https://ref.example/h2
coding: received=2 served=2
workers unchanged
--- no_error_log
exited on signal



=== TEST 4: with seadragon_pass_key on, the key and every other header reach the upstream as sent
--- client
    my $r = request('POST /pass/chat', body => $::chat,
        headers => [Host => 'localhost', Authorization => "Bearer $::coding_key",
                    'User-Agent' => 'continue/1.0', 'X-API-Key' => 'also-sent', Referer => 'https://ref.example/']);
    my $s = standin_requests()->[0];
    join "\n", $r->{status},
        "ollama saw authorization=" . ($s->{headers}{authorization} eq "Bearer $::coding_key" ? 'the key' : 'other')
        . " x-api-key=$s->{headers}{'x-api-key'} user-agent=$s->{headers}{'user-agent'} referer=$s->{headers}{referer}";
--- client_output
200
ollama saw authorization=the key x-api-key=also-sent user-agent=continue/1.0 referer=https://ref.example/



=== TEST 5: a Basic Authorization is not a key: it reaches Ollama untouched, with the headers around it
--- client
    my $r = request('POST /api/chat', body => $::chat,
        headers => [Host => 'localhost', Authorization => 'Basic dXNlcjpwYXNz',
                    'User-Agent' => 'script/1.0', 'X-Other' => 'o']);
    my $s = standin_requests()->[0];
    join "\n", $r->{status},
        "ollama saw authorization=$s->{headers}{authorization} user-agent=$s->{headers}{'user-agent'} x-other=$s->{headers}{'x-other'}",
        counters();
--- client_output
200
ollama saw authorization=Basic dXNlcjpwYXNz user-agent=script/1.0 x-other=o
api: received=1 served=1



=== TEST 6: $seadragon_stream says what Ollama does: /api/chat and /api/generate stream by default, /v1/ only when asked, embeddings never
--- client
    my $m = '"model":"llama3:70b"';
    my $msg = '"messages":[{"role":"user","content":"hi"}]';
    my @cases = (
        ['/api/chat', "{$m,$msg}"], ['/api/chat', "{$m,$msg,\"stream\":false}"],
        ['/api/chat', "{$m,$msg,\"stream\":true}"], ['/api/generate', "{$m,\"prompt\":\"hi\"}"],
        ['/api/generate', "{$m,\"prompt\":\"hi\",\"stream\":false}"],
        ['/api/embed', '{"model":"nomic-embed-text","input":"hi"}'],
        ['/api/embed', '{"model":"nomic-embed-text","input":"hi","stream":true}'],
        ['/api/embeddings', '{"model":"nomic-embed-text","prompt":"hi"}'],
        ['/v1/chat/completions', "{$m,$msg}"], ['/v1/chat/completions', "{$m,$msg,\"stream\":true}"],
        ['/v1/chat/completions', "{$m,$msg,\"stream\":false}"], ['/v1/completions', "{$m,\"prompt\":\"hi\"}"],
        ['/v1/embeddings', '{"model":"nomic-embed-text","input":"hi"}'],
        ['/v1/embeddings', '{"model":"nomic-embed-text","input":"hi","stream":true}'],
    );
    my @out;
    for (@cases) {
        my ($path, $body) = @$_;
        my $r = request("POST $path", body => $body);
        my $streamed = ($r->{headers}{'content-type'} // '') =~ m{x-ndjson|event-stream} ? 'streamed' : 'one answer';
        push @out, "$path " . ($body =~ /"stream":(\w+)/ ? "stream:$1" : 'no stream')
            . " -> $r->{status} X-Stream=$r->{headers}{'x-stream'}, Ollama sent $streamed";
    }
    my @logged = map { /stream=(\S+)/ } log_lines('headers.log', scalar @cases);
    join "\n", @out, "logged: @logged";
--- client_output
/api/chat no stream -> 200 X-Stream=true, Ollama sent streamed
/api/chat stream:false -> 200 X-Stream=false, Ollama sent one answer
/api/chat stream:true -> 200 X-Stream=true, Ollama sent streamed
/api/generate no stream -> 200 X-Stream=true, Ollama sent streamed
/api/generate stream:false -> 200 X-Stream=false, Ollama sent one answer
/api/embed no stream -> 200 X-Stream=false, Ollama sent one answer
/api/embed stream:true -> 200 X-Stream=false, Ollama sent one answer
/api/embeddings no stream -> 200 X-Stream=false, Ollama sent one answer
/v1/chat/completions no stream -> 200 X-Stream=false, Ollama sent one answer
/v1/chat/completions stream:true -> 200 X-Stream=true, Ollama sent streamed
/v1/chat/completions stream:false -> 200 X-Stream=false, Ollama sent one answer
/v1/completions no stream -> 200 X-Stream=false, Ollama sent one answer
/v1/embeddings no stream -> 200 X-Stream=false, Ollama sent one answer
/v1/embeddings stream:true -> 200 X-Stream=false, Ollama sent one answer
logged: true false true true false false false false false true false false false false



=== TEST 7: nginx -t warns about a source that anyone can claim, naming it and its directive, and not about guarded ones
--- http_config
    seadragon_store  $TEST_NGINX_STORE;
    seadragon_zone   ollama:1m capacity=1;
    map $http_origin $seadragon_is_chat { default 0; "https://chat.example.com" 1; }
    geo $is_lab { default 0; 10.1.0.0/16 1; }
    seadragon_source coding  priority=1 if=$http_user_agent key;
    seadragon_source chat    priority=2 if=$seadragon_is_chat;
    seadragon_source beta    priority=2 if=$cookie_beta;
    seadragon_source always  priority=2 if=1;
    seadragon_source lab     priority=2 if=$is_lab;
    seadragon_source office  priority=2 if=$remote_addr;
    seadragon_source partner priority=2 if=$http_x_partner whitelist;
    seadragon_source batch   priority=4 if=$http_x_batch;
    seadragon_source api     priority=3 whitelist;
--- config
    location /api/ { seadragon_queue ollama; return 204; }
--- client
    my ($rc, $out) = nginx_t();
    my @warn = map { s/^.*?\[warn\] (?:\d+#\d+: )?//r } grep { /\[warn\].*seadragon_source/ } split /\n/, $out;
    s/ in \S+nginx\.conf:(\d+)$/ in nginx.conf:LINE/ for @warn;
    join "\n", "nginx -t exit $rc", @warn;
--- client_output
nginx -t exit 0
seadragon_source "chat": "if=$seadragon_is_chat" may test what the client sends (nginx cannot see what $seadragon_is_chat is made of) and the source needs neither "key" nor "whitelist", so anyone can claim it unless the condition depends only on the client's address; add "key" or "whitelist" in nginx.conf:LINE
seadragon_source "beta": "if=$cookie_beta" tests what the client sends ($cookie_beta) and the source needs neither "key" nor "whitelist", so anyone can claim it; add "key" or "whitelist" in nginx.conf:LINE
seadragon_source "always": "if=1" is true for every request and the source needs neither "key" nor "whitelist", so anyone can claim it; add "key" or "whitelist" in nginx.conf:LINE
seadragon_source "lab": "if=$is_lab" may test what the client sends (nginx cannot see what $is_lab is made of) and the source needs neither "key" nor "whitelist", so anyone can claim it unless the condition depends only on the client's address; add "key" or "whitelist" in nginx.conf:LINE
seadragon_source "batch": "if=$http_x_batch" tests what the client sends ($http_x_batch) and the source needs neither "key" nor "whitelist", so anyone can claim it; add "key" or "whitelist" in nginx.conf:LINE



=== TEST 8: the shipped example: a keyless stranger who sends the chat's Origin cannot claim its priority nor fill the queue
--- http_config eval: main::example_conf()
--- config
    location = /unused { return 204; }
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my %admin = (port => $p, headers => { Authorization => "Bearer $::admin_key" });
    my $pids = join ',', nginx_worker_pids();
    my ($rc, $t) = nginx_t();
    my @warn = grep { /\[warn\].*seadragon_source/ } split /\n/, $t;
    # a chat user holds the gate, then strangers try to queue ahead
    my $token = main::chat_token();
    my $hold = hold_gate(sub { start_request('POST /api/chat', port => $p, body => $::chat,
        headers => { Authorization => "Bearer $token", Origin => 'https://chat.example.com',
                     'X-Standin-Hold' => 1 }) });
    my %statuses;
    for my $origin (('https://chat.example.com') x 30, ('http://localhost:3000') x 5) {
        my $r = request('POST /api/chat', port => $p, body => $::chat,
                        headers => { Origin => $origin });
        $statuses{ said($r) }++;
    }
    my $during = queue_of(%admin);
    my $held = release_gate($hold);
    my $after = queue_of(%admin);
    join "\n", "nginx -t exit $rc, " . scalar(@warn) . " warnings about sources",
        (map { "$statuses{$_}x $_" } sort keys %statuses),
        "while held: $during", "held chat: $held->{status}", "after: $after",
        "ollama saw " . scalar(@{ standin_requests() }),
        counters(%admin),
        "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
nginx -t exit 0, 0 warnings about sources
35x 401 {"error":"login required"}
while held: gate=open processing=1 queue_length=0
held chat: 200
after: gate=open processing=0 queue_length=0
ollama saw 1
chat: received=36 served=1 rejected key:35
workers unchanged



=== TEST 9: the shipped example: a chat user's token gets the chat's priority; a chat key and Origin alone get a 401
--- http_config eval: main::example_conf()
--- config
    location = /unused { return 204; }
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my $token = main::chat_token();
    my $logged = request('POST /api/chat', port => $p, body => $::chat,
                         headers => { Authorization => "Bearer $token" });
    my $stranger = request('POST /v1/chat/completions', port => $p, body => $::chat,
                           headers => { Origin => 'https://chat.example.com', 'User-Agent' => 'Mozilla/5.0' });
    my $keyed = request('POST /api/chat', port => $p, body => $::chat,
                        headers => { Authorization => "Bearer $::chat_key" });
    my @lines = grep { !m{ /auth/token } } log_lines('seadragon.access.log', 4);
    join "\n", "logged in $logged->{status}", "stranger " . said($stranger),
        "chat key " . said($keyed),
        map { /source=(\S+) priority=(\d+) .* key=(\S*)/ ? "logged $1 $2 key=$3" : $_ } @lines;
--- client_output
logged in 200
stranger 401 {"error":{"message":"login required","type":"authentication_error","param":null,"code":null}}
chat key 401 {"error":"login required"}
logged chat 2 key=-
logged chat 2 key=-
logged chat 2 key=alice-chat



=== TEST 10: the shipped TLS example: Origin alone buys nothing, localhost:3000 is not a production origin, POST / never reaches Ollama
--- http_config eval
    main::tls_certificates();
    main::tls_example_conf();
--- config
    location = /unused { return 204; }
--- client
    my $pids = join ',', nginx_worker_pids();
    my ($rc, $t) = nginx_t();
    my @warn = grep { /\[warn\].*seadragon_source/ } split /\n/, $t;
    my $chat = curl('POST', 'https://api.example.com/api/chat', body => $::chat,
                    headers => { Origin => 'https://chat.example.com' }, http => '2');
    my $dev = curl('POST', 'https://api.example.com/api/chat', body => $::chat,
                   headers => { Origin => 'http://localhost:3000' }, http => '2');
    my $root = curl('POST', 'https://api.example.com/', body => $::chat, http => '2');
    my $odd = curl('GET', 'https://api.example.com/?x=1', http => '2');
    my $get = curl('GET', 'https://api.example.com/', http => '2');
    my $admin = curl('GET', 'https://admin.example.com/api/admin/stats',
                     headers => { Authorization => "Bearer $::admin_key" }, http => '2');
    my $s = json_decode($admin->{body})->{sources};
    join "\n", "nginx -t exit $rc, " . scalar(@warn) . " warnings about sources",
        "chat origin: " . said($chat) . " allow-origin=" . ($chat->{headers}{'access-control-allow-origin'} // 'none'),
        "localhost:3000: " . said($dev) . " allow-origin=" . ($dev->{headers}{'access-control-allow-origin'} // 'none'),
        "POST /: $root->{status}", "GET /?x=1: $odd->{status}", "GET /: $get->{status} $get->{body}",
        "ollama saw " . join(' ', map { "$_->{method} $_->{path}" } @{ standin_requests() }),
        "chat received=$s->{chat}{received} rejected key=$s->{chat}{rejected}{key}",
        "api received=$s->{api}{received} rejected whitelist=$s->{api}{rejected}{whitelist}",
        "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
nginx -t exit 0, 0 warnings about sources
chat origin: 401 {"error":"login required"} allow-origin=https://chat.example.com
localhost:3000: 403 {"error":"IP not whitelisted"} allow-origin=none
POST /: 403
GET /?x=1: 404
GET /: 200 Ollama is running
ollama saw GET /
chat received=1 rejected key=1
api received=1 rejected whitelist=1
workers unchanged



=== TEST 11: the shipped access log: a model name with spaces and quotes cannot forge fields
--- http_config eval: main::example_conf()
--- config
    location = /unused { return 204; }
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my @models = ('x source=admin key=ops', 'x" source=admin key="ops', "x\nforged line", 'x\\" key=ops');
    my $token = main::chat_token();
    for my $model (@models) {
        request('POST /api/chat', port => $p, headers => { Authorization => "Bearer $token" },
                body => json_encode({ model => $model, messages => [], stream => JSON::PP::false() }));
    }
    my @lines = grep { !m{ /auth/token } }
        log_lines('seadragon.access.log', @models + 1);
    my $field = qr/"((?:[^"\\]|\\.)*)"/;
    my @out = ("lines: " . scalar(@lines));
    for my $line (@lines) {
        if ($line =~ /^\S+ \[[^\]]+\] $field (\d+) \d+ endpoint=(\S*) source=(\S+) priority=(\d+) model=$field stream=(\S+) key=(\S*) user=\S* id=\S* position=\S* wait_ms=\S* rt=\S+$/) {
            my ($status, $source, $key, $model) = ($2, $4, $8, $6);
            $model =~ s/\\x([0-9A-F]{2})/chr hex $1/ge;
            my @sources = ($line =~ s/$field//gr) =~ / source=/g;
            push @out, "$status source=$source key=$key, "
                . scalar(@sources) . " source= in the line, model "
                . ((grep { $_ eq $model } @models) ? 'read back whole' : "read as <$model>");
        } else {
            push @out, "not in the log format: $line";
        }
    }
    join "\n", @out;
--- client_output
lines: 4
404 source=chat key=-, 1 source= in the line, model read back whole
404 source=chat key=-, 1 source= in the line, model read back whole
404 source=chat key=-, 1 source= in the line, model read back whole
404 source=chat key=-, 1 source= in the line, model read back whole



=== TEST 12: the shipped example: Ollama's root answers GET and HEAD of "/" only; other methods and spellings never reach Ollama
--- http_config eval: main::example_conf()
--- config
    location = /unused { return 204; }
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my %admin = (port => $p, headers => { Authorization => "Bearer $::admin_key" });
    my $pids = join ',', nginx_worker_pids();
    my @refused;
    for my $raw ("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                 "PUT / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                 "DELETE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "OPTIONS / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "PATCH / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET /?model=x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET // HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET /./ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET /%2F HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET /api/.. HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET /%61pi/../ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "GET http://localhost/?a=b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "POST http://localhost/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    {
        my $r = request('', port => $p, raw => $raw);
        my ($line) = $raw =~ /^(.*?) HTTP/;
        push @refused, "$line -> " . said($r) . " " . ($r->{headers}{'content-type'} // '');
    }
    my $seen = scalar @{ standin_requests() };
    my $get = request('GET /', port => $p);
    my $head = request('HEAD /', port => $p);
    my $abs = request('', port => $p, raw => "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    join "\n", @refused, "ollama saw $seen of them",
        "GET / $get->{status} $get->{body}", "HEAD / $head->{status} body=" . length($head->{body}),
        "GET http://localhost/ $abs->{status} $abs->{body}",
        "then ollama saw " . join(' ', map { "$_->{method} $_->{path}" } @{ standin_requests() }),
        "counters: " . (counters(%admin) || 'none'), queue_of(%admin),
        "workers " . (join(',', nginx_worker_pids()) eq $pids ? 'unchanged' : 'changed');
--- client_output
POST / -> 403 {"error":"forbidden"} application/json
PUT / -> 403 {"error":"forbidden"} application/json
DELETE / -> 403 {"error":"forbidden"} application/json
OPTIONS / -> 403 {"error":"forbidden"} application/json
PATCH / -> 403 {"error":"forbidden"} application/json
GET /?model=x -> 404 {"error":"not found"} application/json
GET // -> 404 {"error":"not found"} application/json
GET /./ -> 404 {"error":"not found"} application/json
GET /%2F -> 404 {"error":"not found"} application/json
GET /api/.. -> 404 {"error":"not found"} application/json
GET /%61pi/../ -> 404 {"error":"not found"} application/json
GET http://localhost/?a=b -> 404 {"error":"not found"} application/json
POST http://localhost/ -> 403 {"error":"forbidden"} application/json
ollama saw 0 of them
GET / 200 Ollama is running
HEAD / 200 body=0
GET http://localhost/ 200 Ollama is running
then ollama saw GET / HEAD / GET /
counters: none
gate=open processing=0 queue_length=0
workers unchanged
