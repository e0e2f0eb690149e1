# The production example, conf/seadragon-tls.conf, over TLS with a
# throwaway CA: HTTP/1.1 and HTTP/2, the redirect from plain HTTP, CORS for
# the allowed origins only, preflights answered by nginx alone, and the
# admin and chat hosts.  Only ports, paths and certificates are the test's.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::TLS;
use FindBin;

# the store, with loopback whitelisted, the harness's own server (it shares
# the example's zone and upstream: tls_hold() there holds the gate) and the
# example on test ports: tls_setup()
tls_setup();
sub tool { store_tool(@_) }
our $chat_key = tool('key create chat-tls --source chat');

# a person of the chat source, and a token of theirs from the chat host's
# /auth/token (the chat source takes a logged-in user only: "login")
{
    require File::Temp;
    my $pw = File::Temp->new();
    print $pw "chat person\n";
    close $pw;
    tool("user add carol-tls --source chat < '$pw'");
}
sub chat_token {
    my $r = curl('POST', 'https://chat.example.com/auth/token',
        body => 'username=carol-tls&password=chat+person',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return json_decode($r->{body})->{access_token}
        // die "no token: $r->{status} $r->{body}";
}

sub chat_body { '{"model":"llama3:70b","messages":[{"role":"user","content":"Why is the sky blue?"}]' . ($_[0] // '') . '}' }

# "status version" and the CORS headers of an answer, one a line
sub cors {
    my ($r) = @_;
    join "\n", "$r->{status} HTTP/$r->{http_version}" . ($r->{error} ? " $r->{error}" : ''),
        map { defined $r->{headers}{$_} ? "$_: $r->{headers}{$_}" : () }
        qw(access-control-allow-origin access-control-allow-methods
           access-control-allow-headers access-control-max-age
           access-control-expose-headers vary);
}

# The example shares the store, the sources and the queue of
# conf/seadragon.conf, and its upstreams are on loopback.
{
    my $read = sub { open my $fh, '<', "$FindBin::Bin/../conf/$_[0]" or die $!; local $/; <$fh> };
    my $pick = sub {
        my $text = shift;
        join "\n", grep { /^\s*(seadragon_(store|zone|source)\b|map\b|"|default\b)/ }
                   split /\n/, ($text =~ /\A(.*?)^log_format/ms)[0];
    };
    my $tls = $read->('seadragon-tls.conf');
    # a chat frontend in development (http://localhost:3000) is for the
    # loopback example only, not for production
    (my $dev = $pick->($read->('seadragon.conf'))) =~ s{\n\s*"http://localhost:3000".*}{};
    is($pick->($tls), $dev,
       'seadragon-tls.conf classifies and queues as seadragon.conf does');
    unlike($tls, qr/localhost:3000/, 'seadragon-tls.conf allows no development origin');
    my @servers = $tls =~ /^upstream\s+\w+\s*\{(.*?)^\}/gms;
    my @addresses = map { /^\s*server\s+(\S+)/gm } @servers;
    ok(@addresses && !grep({ !/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+;?$/ } @addresses),
       "Ollama is on loopback in seadragon-tls.conf (@addresses)");
}

run_tests();

__DATA__

=== TEST 1: a chat streams over TLS with HTTP/1.1, through the queue, with HSTS
--- client
    my $r = curl('POST', 'https://api.example.com/api/chat', body => chat_body(),
                 headers => { 'X-Standin-Tokens' => 5 }, http => '1.1');
    die "curl: $r->{error}" if $r->{error};
    my @lines = map { json_decode($_) } split /\n/, $r->{body};
    my $s = standin_requests()->[0];
    join "\n", "$r->{status} HTTP/$r->{http_version} $r->{headers}{'content-type'}",
        "tokens: " . join('', map { $_->{message}{content} } @lines),
        "done: $lines[-1]{done}",
        "queued at $r->{headers}{'x-queue-position'} waited $r->{headers}{'x-queue-wait-time'}",
        "hsts: $r->{headers}{'strict-transport-security'}",
        "ollama saw $s->{method} $s->{path} Host=$s->{headers}{host}";
--- client_output
200 HTTP/1.1 application/x-ndjson
tokens: tok1 tok2 tok3 tok4 tok5 
done: 1
queued at 1 waited 0
hsts: max-age=31536000
ollama saw POST /api/chat Host=localhost



=== TEST 2: HTTP/2: a streamed chat, an OpenAI stream and the models list
--- client
    my $chat = curl('POST', 'https://api.example.com/api/chat', body => chat_body(),
                    headers => { 'X-Standin-Tokens' => 3 }, http => '2');
    my $sse = curl('POST', 'https://api.example.com/v1/chat/completions',
                   body => chat_body(',"stream":true'),
                   headers => { 'X-Standin-Tokens' => 3 }, http => '2');
    my $models = curl('GET', 'https://api.example.com/v1/models', http => '2');
    my @events = grep { /^data: / } split /\n/, $sse->{body};
    join "\n",
        "chat $chat->{status} HTTP/$chat->{http_version} lines=" . scalar(split /\n/, $chat->{body})
            . " last=" . ((split /\n/, $chat->{body})[-1] =~ /"done":true/ ? 'done' : 'cut'),
        "sse $sse->{status} HTTP/$sse->{http_version} events=" . scalar(@events) . " last=$events[-1]",
        "models $models->{status} HTTP/$models->{http_version} "
            . join(',', map { $_->{id} } @{ json_decode($models->{body})->{data} }),
        "ollama saw " . join(' ', map { $_->{path} } @{ standin_requests() });
--- client_output
chat 200 HTTP/2 lines=4 last=done
sse 200 HTTP/2 events=5 last=data: [DONE]
models 200 HTTP/2 llama3:70b,nomic-embed-text:latest
ollama saw /api/chat /v1/chat/completions /v1/models



=== TEST 3: plain HTTP redirects to HTTPS for each host name, and never reaches Ollama
--- client
    join "\n", (map {
        my $r = curl('GET', "http://$_/api/tags?verbose=1");
        "$r->{status} $r->{headers}{location}";
    } example_hosts()), "ollama saw " . scalar(@{ standin_requests() });
--- client_output
301 https://api.example.com/api/tags?verbose=1
301 https://admin.example.com/api/tags?verbose=1
301 https://chat.example.com/api/tags?verbose=1
ollama saw 0



=== TEST 4: plain HTTP still serves Let's Encrypt's challenges
--- user_files
>>> acme/.well-known/acme-challenge/token-123
the-key-authorization
--- client
    my $r = curl('GET', 'http://api.example.com/.well-known/acme-challenge/token-123');
    "$r->{status} $r->{body}";
--- client_output
200 the-key-authorization



=== TEST 5: a preflight from each allowed origin is answered at once while the gate is held, without queueing or reaching Ollama
--- client
    my $hold = tls_hold();
    my @out;
    for my $origin ('https://chat.example.com', 'https://admin.example.com') {
        my $r = curl('OPTIONS', 'https://api.example.com/api/chat', http => '2',
            headers => { Origin => $origin, 'Access-Control-Request-Method' => 'POST',
                         'Access-Control-Request-Headers' => 'authorization,content-type,x-stainless-os' });
        push @out, cors($r);
    }
    my $reached = scalar @{ standin_requests() };
    my $queued = queued_count();
    standin_release();
    wait_all($hold);
    join "\n", @out, "ollama saw $reached (the hold), the zone queued $queued (the hold)";
--- client_output
204 HTTP/2
access-control-allow-origin: https://chat.example.com
access-control-allow-methods: GET, HEAD, POST, DELETE, OPTIONS
access-control-allow-headers: authorization,content-type,x-stainless-os
access-control-max-age: 7200
access-control-expose-headers: X-Queue-Wait-Time, X-Queue-Position, Retry-After
vary: Origin
204 HTTP/2
access-control-allow-origin: https://admin.example.com
access-control-allow-methods: GET, HEAD, POST, DELETE, OPTIONS
access-control-allow-headers: authorization,content-type,x-stainless-os
access-control-max-age: 7200
access-control-expose-headers: X-Queue-Wait-Time, X-Queue-Position, Retry-After
vary: Origin
ollama saw 1 (the hold), the zone queued 1 (the hold)



=== TEST 6: a preflight from any other origin gets no allow header, and no Ollama either
--- client
    my @out;
    for my $origin ('https://evil.example.net', 'https://chat.example.com.evil.example.net',
                    'http://chat.example.com', 'null', 'http://localhost:3000') {
        my $r = curl('OPTIONS', 'https://api.example.com/v1/chat/completions',
            headers => { Origin => $origin, 'Access-Control-Request-Method' => 'POST',
                         'Access-Control-Request-Headers' => 'authorization' });
        push @out, "$origin: " . cors($r);
    }
    join "\n", @out, "ollama saw " . scalar(@{ standin_requests() });
--- client_output
https://evil.example.net: 204 HTTP/2
vary: Origin
https://chat.example.com.evil.example.net: 204 HTTP/2
vary: Origin
http://chat.example.com: 204 HTTP/2
vary: Origin
null: 204 HTTP/2
vary: Origin
http://localhost:3000: 204 HTTP/2
vary: Origin
ollama saw 0



=== TEST 7: real answers carry the CORS headers for an allowed origin, errors too; other origins get none
--- client
    my $token = chat_token();
    my $chat = curl('POST', 'https://api.example.com/api/chat', body => chat_body(',"stream":false'),
        headers => { Origin => 'https://chat.example.com', Authorization => "Bearer $token" });
    my $bad = curl('POST', 'https://api.example.com/api/chat', body => '{"model":',
        headers => { Origin => 'https://chat.example.com', Authorization => "Bearer $token" });
    my $tags = curl('GET', 'https://api.example.com/api/tags',
        headers => { Origin => 'https://admin.example.com' });
    my $evil = curl('POST', 'https://api.example.com/api/chat', body => chat_body(',"stream":false'),
        headers => { Origin => 'https://evil.example.net' });
    my @log = grep { m{"POST /api/chat } } split /\n/, access_log_text('seadragon.access.log');
    join "\n", cors($chat), cors($bad), "body: $bad->{body}", cors($tags), cors($evil),
        map { m{" (\d+) .*source=(\S+)} ? "logged $1 source=$2" : $_ } @log;
--- client_output
200 HTTP/2
access-control-allow-origin: https://chat.example.com
access-control-allow-methods: GET, HEAD, POST, DELETE, OPTIONS
access-control-max-age: 7200
access-control-expose-headers: X-Queue-Wait-Time, X-Queue-Position, Retry-After
vary: Origin
400 HTTP/2
access-control-allow-origin: https://chat.example.com
access-control-allow-methods: GET, HEAD, POST, DELETE, OPTIONS
access-control-max-age: 7200
access-control-expose-headers: X-Queue-Wait-Time, X-Queue-Position, Retry-After
vary: Origin
body: {"error":"Invalid JSON"}
200 HTTP/2
access-control-allow-origin: https://admin.example.com
access-control-allow-methods: GET, HEAD, POST, DELETE, OPTIONS
access-control-max-age: 7200
access-control-expose-headers: X-Queue-Wait-Time, X-Queue-Position, Retry-After
vary: Origin
200 HTTP/2
vary: Origin
logged 200 source=chat
logged 400 source=chat
logged 200 source=api



=== TEST 8: the admin host serves the admin page and the admin API over HTTP/2, with CORS
--- client
    my $key = tool('key create ops-tls --source admin');
    my $root = curl('GET', 'https://admin.example.com/');
    my $page = curl('GET', 'https://admin.example.com/api/admin/page');
    my $queue = curl('GET', 'https://admin.example.com/api/admin/queue',
        headers => { Authorization => "Bearer $key", Origin => 'https://admin.example.com' });
    my $nokey = curl('GET', 'https://admin.example.com/api/admin/queue');
    my $pre = curl('OPTIONS', 'https://admin.example.com/api/admin/gate/pause',
        headers => { Origin => 'https://admin.example.com', 'Access-Control-Request-Method' => 'POST' });
    my $metrics = curl('GET', 'https://admin.example.com/metrics');
    die "queue: " . json_encode($queue) unless $queue->{status} == 200;
    my $q = json_decode($queue->{body});
    (my $location = $root->{headers}{location}) =~ s/:$ENV{TEST_NGINX_TLS_PORT}\b/:PORT/;
    join "\n", "root $root->{status} $location",
        "page $page->{status} HTTP/$page->{http_version} $page->{headers}{'content-type'}",
        "queue $queue->{status} gate=$q->{gate} allow-origin=$queue->{headers}{'access-control-allow-origin'}",
        "no key $nokey->{status} $nokey->{body}",
        "preflight $pre->{status} allow-origin=$pre->{headers}{'access-control-allow-origin'}",
        "metrics $metrics->{status} " . ($metrics->{body} =~ /^seadragon_gate_capacity\{zone="ollama"\} 1$/m ? 'capacity' : 'none'),
        "ollama saw " . scalar(@{ standin_requests() });
--- client_output
root 302 https://admin.example.com:PORT/api/admin/page
page 200 HTTP/2 text/html
queue 200 gate=open allow-origin=https://admin.example.com
no key 401 {"error":"admin key required"}
preflight 204 allow-origin=https://admin.example.com
metrics 200 capacity
ollama saw 0



=== TEST 9: the chat host serves the chat page at /, logins at /auth/ and the API the page calls, nothing else
--- client
    require File::Temp;
    my $pw = File::Temp->new();
    print $pw "correct horse\n";
    close $pw;
    tool("user add alice-tls --source chat < '$pw'");
    my $page = curl('GET', 'https://chat.example.com/');
    my $repo = do { open my $p, '<', "$FindBin::Bin/../conf/html/chat.html" or die $!; local $/; <$p> };
    my $login = curl('POST', 'https://chat.example.com/auth/token',
        body => 'username=alice-tls&password=correct+horse',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    my $token = json_decode($login->{body})->{access_token} // '';
    my $me = curl('GET', 'https://chat.example.com/auth/me', headers => { Authorization => "Bearer $token" });
    my $tags = curl('GET', 'https://chat.example.com/api/tags', headers => { Authorization => "Bearer $token" });
    my @other = map { my $r = curl('GET', "https://chat.example.com$_"); "$_ $r->{status}" } qw(/c/42 /chat.html /api/admin/queue);
    tool('user remove alice-tls');
    join "\n", "/ $page->{status} HTTP/$page->{http_version} $page->{headers}{'content-type'} "
            . ($page->{body} eq $repo ? 'the chat page' : 'something else'),
        "login $login->{status} " . ($token =~ /^[\w-]+\.[\w-]+\.[\w-]+$/ ? 'a token' : $login->{body}),
        "me $me->{status} " . json_decode($me->{body})->{name},
        "tags $tags->{status} " . join(',', map { $_->{name} } @{ json_decode($tags->{body})->{models} }),
        @other;
--- client_output
/ 200 HTTP/2 text/html the chat page
login 200 a token
me 200 alice-tls
tags 200 llama3:70b,nomic-embed-text:latest
/c/42 404
/chat.html 404
/api/admin/queue 404



=== TEST 10: the certificate is checked: a client that does not trust the CA is refused
--- client
    my $r = curl('GET', 'https://api.example.com/api/tags', ca => '');
    ($r->{error} // '') =~ /certificate|SSL/ ? 'refused' : "accepted: $r->{status}";
--- client_output: refused



=== TEST 11: on one HTTP/2 connection, streams parked in the queue hold up no other stream, and leave in priority order
--- client
    use IPC::Open2 ();
    local $ENV{NODE_EXTRA_CA_CERTS} = tls_certificates()->{ca};
    my $pid = IPC::Open2::open2(my $out, my $in, 'node', '--require',
        "$ENV{TEST_NGINX_REPO}/t/node/example-hosts.cjs", "$ENV{TEST_NGINX_REPO}/t/node/h2-session.cjs",
        "https://api.example.com:$ENV{TEST_NGINX_TLS_PORT}");
    $in->autoflush(1);
    my $send = sub { print $in json_encode({ @_ }), "\n" };
    my $line = sub {
        my $sel = IO::Select->new($out);
        $sel->can_read(10) or die "no answer from the HTTP/2 client";
        my $l = <$out> // die "the HTTP/2 client ended";
        json_decode($l);
    };
    my $token = chat_token();
    my $hold = tls_hold();
    $send->(id => 'api', method => 'POST', path => '/api/chat', body => chat_body(',"stream":false'));
    wait_until(sub { queued_count() == 2 }, 'api to queue');
    $send->(id => 'chat', method => 'POST', path => '/api/chat', body => chat_body(',"stream":false'),
            headers => { origin => 'https://chat.example.com', authorization => "Bearer $token" });
    wait_until(sub { queued_count() == 3 }, 'chat to queue');
    $send->(id => 'tags', method => 'GET', path => '/api/tags');
    my $first = $line->();
    my $reached = join ',', map { $_->{path} } @{ standin_requests() };
    standin_release();
    my @rest = ($line->(), $line->());
    $send->(close => 1);
    my $sessions = $line->();
    close $in;
    waitpid $pid, 0;
    wait_all($hold);
    join "\n", (map { "$_->{id} $_->{status} stream $_->{stream}" . ($_->{body} =~ /"done":true|"models"/ ? ' ok' : " $_->{body}") } $first, @rest),
        "while parked, Ollama had seen: $reached", "connections: $sessions->{sessions}";
--- client_output
tags 200 stream 5 ok
chat 200 stream 3 ok
api 200 stream 1 ok
while parked, Ollama had seen: /api/chat,/api/tags
connections: 1



=== TEST 12: on the chat host a person's token streams a chat as the chat source; a chat key and no credential are refused
--- client
    require File::Temp;
    my $pw = File::Temp->new();
    print $pw "correct horse\n";
    close $pw;
    tool("user add bob-tls --source chat < '$pw'");
    my $login = curl('POST', 'https://chat.example.com/auth/token',
        body => 'username=bob-tls&password=correct+horse',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    my $token = json_decode($login->{body})->{access_token};
    my %origin = (Origin => 'https://chat.example.com');
    my $chat = curl('POST', 'https://chat.example.com/api/chat', body => chat_body(),
        headers => { %origin, Authorization => "Bearer $token" });
    my $key = curl('POST', 'https://chat.example.com/api/chat', body => chat_body(),
        headers => { %origin, Authorization => "Bearer $::chat_key" });
    my $none = curl('POST', 'https://chat.example.com/api/chat', body => chat_body(), headers => { %origin });
    tool('user remove bob-tls');
    my @log = grep { m{"POST /api/chat } } split /\n/, access_log_text('seadragon.access.log');
    join "\n", "token $chat->{status} " . ((split /\n/, $chat->{body})[-1] =~ /"done":true/ ? 'done' : 'cut'),
        "chat key $key->{status} $key->{body}", "none $none->{status} $none->{body}",
        map { m{" (\d+) .*source=(\S+)} ? "logged $1 source=$2" : $_ } @log;
--- client_output
token 200 done
chat key 401 {"error":"login required"}
none 401 {"error":"login required"}
logged 200 source=chat
logged 401 source=chat
logged 401 source=chat
