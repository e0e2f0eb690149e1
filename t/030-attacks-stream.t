# Hostile streaming: a client that stops reading may not keep the model
# (finding 9 of issue 11), an engine that closes its connection after
# every stream may not cost a request (finding 19), and an engine's own
# CORS headers never reach a browser.  Every block checks the state after
# the attack: the gate and the queue, the counters, what the engine saw,
# the error log.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::TLS;
use FindBin;
use Socket qw(:all);
use IO::Handle ();
use Time::HiRes ();

# llama-server's CORS manners for the file's own stand-in
standin_options('--cors');

# the store of the TLS example, with loopback whitelisted
our $StoreDir = store_init();
sub tool { store_tool(@_) }
tool('whitelist add 127.0.0.1');
# the TLS example's chat needs a logged-in user besides its Origin (TEST
# 7): a person of the chat source, with a token from the chat host
{
    my $file = "$StoreDir/password";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "chat person\n";
    close $fh;
    tool("user add web --source chat < '$file'");
    unlink $file;
}
sub chat_token {
    my $r = curl('POST', 'https://chat.example.com/auth/token',
        body => 'username=web&password=chat+person',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return json_decode($r->{body})->{access_token}
        // die "no token: $r->{status} $r->{body}";
}

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=3;
    seadragon_stall_timeout 2s;

    upstream ollama {
        server    127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        keepalive 8;
    }
_EOC_

# send_timeout is nginx's default, written out: the bound must not wait
# for it
our $config = <<'_EOC_';
    send_timeout 60s;
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/ {
        seadragon_queue    ollama;
        proxy_pass         http://ollama;
        proxy_http_version 1.1;
        proxy_set_header   Connection "";
        proxy_set_header   Host localhost;
        proxy_buffering    off;
        proxy_read_timeout 600s;
    }
_EOC_

# An engine that closes after every stream, as llama-server does: a
# stand-in of its own, started once for the file.
our $closing;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
    $closing //= standin_start_another('--close-after-stream --cors');
    $ENV{TEST_NGINX_CLOSING_PORT} = $closing;
    standin_reset($closing);
});

sub slurp {
    open my $fh, '<', $_[0] or die "cannot read $_[0]: $!\n";
    local $/;
    return scalar <$fh>;
}

# The upstream settings conf/seadragon.conf recommends, as shipped: its
# upstream block (towards the stand-in whose port is in the variable
# named, the closing one by default) and the proxy_* directives of its
# server.
sub recommended {
    my ($port) = @_;
    $port //= 'TEST_NGINX_CLOSING_PORT';
    my $conf = slurp("$FindBin::Bin/../conf/seadragon.conf");
    my ($upstream) = $conf =~ /^(upstream ollama \{.*?^\})/ms
        or die "conf/seadragon.conf has no upstream ollama block\n";
    $upstream =~ s/127\.0\.0\.1:11434/127.0.0.1:\$$port/
        or die "conf/seadragon.conf's upstream is not 127.0.0.1:11434\n";
    my @server = $conf =~ /^    ((?:proxy_(?!pass\b)\w+|seadragon_stall_timeout)\s.*;)$/mg
        or die "conf/seadragon.conf has no proxy settings\n";
    return ($upstream, join("\n", @server));
}


# "received=N served=N errors=N aborted=parked+streaming" of the source api
sub counters {
    my $c = admin_stats('api');
    return "received=$c->{received} served=$c->{served} errors=$c->{upstream_errors} "
        . "aborted=$c->{aborted}{parked}+$c->{aborted}{streaming}";
}

sub gate {
    my $q = admin_queue();
    return "processing=$q->{processing} waiting=$q->{queue_length}";
}

sub record_of {
    my ($tag, $port) = @_;
    my @r = grep { ($_->{tag} // '') eq $tag } @{ standin_requests($port) };
    return $r[-1];
}

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}]}';

# A client with a tiny receive buffer that asks for an endless stream and
# reads nothing, unless told to; returns the socket.
sub stalled_client {
    my ($tag) = @_;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 2048)) or die "SO_RCVBUF: $!";
    connect($s, pack_sockaddr_in($ENV{TEST_NGINX_SERVER_PORT}, inet_aton('127.0.0.1')))
        or die "connect: $!";
    $s->autoflush(1);
    print $s "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "X-Standin-Tag: $tag\r\nX-Standin-Tokens: 1000000\r\nX-Standin-Delay-Ms: 0\r\n"
        . "Content-Length: " . length($chat) . "\r\n\r\n$chat";
    wait_until(sub { my $r = record_of($tag); $r && $r->{tokens_sent} > 100 },
               "$tag to stream");
    return $s;
}

# what a socket holds until the other side closes it
sub drain {
    my ($s) = @_;
    my ($all, $buf) = ('');
    while (sysread($s, $buf, 65536)) { $all .= $buf }
    close $s;
    return $all;
}

sub next_request {
    my ($tag, $port) = @_;
    my $n = queued_count();
    my $h = start_request('POST /api/chat', body => $chat, timeout => 30,
        headers => { 'X-Standin-Tag' => $tag, 'X-Standin-Tokens' => 3,
                     'X-Standin-Delay-Ms' => 0 });
    wait_until(sub { queued_count() > $n }, "$tag to queue");
    return $h;
}

sub complete { ($_[0]{status} // 0) == 200 && $_[0]{body} =~ /"done":true/ ? 'complete' : 'broken' }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a client that reads nothing is cut after seadragon_stall_timeout: the next request gets the model while its connection is still open, and it counts as a client abort
--- client
    my $s = stalled_client('stalled');
    my $next = next_request('next');
    my $waiting = gate();
    my $r = wait_request($next);
    my $after = gate();
    my $stalled = record_of('stalled');
    # only now does the stalled client look at what it got
    my $got = drain($s);
    my ($status) = $got =~ m{^HTTP/1\.1 (\d+)};
    wait_until(sub { admin_stats('api')->{aborted}{streaming} == 1 }, 'the abort to count');
    join "\n", "while it stalled: $waiting",
        "next: " . complete($r) . " while the stalled connection was open",
        "stalled, at Ollama: " . ($stalled->{aborted} ? 'connection closed' : 'still running')
            . ", $status and part of the stream, "
            . ($got =~ /\r\n0\r\n\r\n\z/ ? 'ended' : 'not ended'),
        "gate after: $after", counters(),
        "Ollama: active=" . standin_stats()->{active};
--- client_output
while it stalled: processing=1 waiting=1
next: complete while the stalled connection was open
stalled, at Ollama: connection closed, 200 and part of the stream, not ended
gate after: processing=0 waiting=0
received=2 served=1 errors=0 aborted=0+1
Ollama: active=0
--- error_log eval
qr/seadragon cuts the stream of a client that took less than 1024 bytes in \d+ms \(seadragon_stall_timeout\)/
--- no_error_log
[error]
[alert]



=== TEST 2: a reader that takes a little every second keeps its stream; the bound runs from its last read
--- http_config eval
(my $c = $::http_config) =~ s/seadragon_stall_timeout 2s;/seadragon_stall_timeout 3s;/ or die;
$c
--- client
    my $s = stalled_client('slow');
    my $next = next_request('next');
    my ($reads, $taken, $buf) = (0, 0);
    for (1 .. 5) {
        Time::HiRes::sleep(1);
        my $n = sysread($s, $buf, 4096);
        $reads++ if $n;
        $taken += $n;
    }
    my $last_read = Time::HiRes::time();
    my $during = gate();
    my $r = wait_request($next);
    my $slow = record_of('slow');
    drain($s);
    my $started = record_of('next')->{start};
    join "\n", "reads that got data: $reads, while the next waited: $during",
        "next: " . complete($r) . ", started "
            . ($started > $last_read ? 'after the last read' : 'while the slow one read'),
        "slow, at Ollama: " . ($slow->{aborted} ? 'connection closed' : 'still running'),
        "gate after: " . gate(), counters();
--- client_output
reads that got data: 5, while the next waited: processing=1 waiting=1
next: complete, started after the last read
slow, at Ollama: connection closed
gate after: processing=0 waiting=0
received=2 served=1 errors=0 aborted=0+1
--- no_error_log
[error]



=== TEST 3: without the bound (seadragon_stall_timeout 0), nginx's send_timeout cuts the client, and that too counts as a client abort, not an Ollama error
--- http_config eval
(my $c = $::http_config) =~ s/seadragon_stall_timeout 2s;/seadragon_stall_timeout 0;/ or die;
$c
--- config eval
(my $c = $::config) =~ s/send_timeout 60s;/send_timeout 2s;/ or die;
$c
--- client
    my $s = stalled_client('stalled');
    my $next = next_request('next');
    my $r = wait_request($next);
    drain($s);
    wait_until(sub { admin_stats('api')->{aborted}{streaming} == 1 }, 'the abort to count');
    join "\n", "next: " . complete($r), "gate after: " . gate(), counters();
--- client_output
next: complete
gate after: processing=0 waiting=0
received=2 served=1 errors=0 aborted=0+1
--- error_log
client timed out
--- no_error_log
seadragon cuts the stream
[error]



=== TEST 4: through the recommended settings, an answer that nginx can read whole frees the model at once, though its client reads nothing
--- http_config eval
my ($upstream, $proxy) = ::recommended('TEST_NGINX_OLLAMA_PORT');
# the kernel's share pinned (16k for nginx's send buffer), so that what
# nginx itself reads ahead is what frees the model
"    seadragon_zone ollama:1m capacity=1;\n    seadragon_source api priority=3;\n$upstream\n"
. "    server {\n        listen 127.0.0.1:\$TEST_NGINX_SNDBUF_PORT sndbuf=16k;\n$proxy\n"
. "        location /api/ { seadragon_queue ollama; proxy_pass http://ollama/api/; }\n    }\n"
--- config
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/ { seadragon_queue ollama; proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT; }
--- client
    # 500 tokens (about 60k): more than the sockets hold, less than nginx reads ahead
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 2048)) or die;
    connect($s, pack_sockaddr_in($ENV{TEST_NGINX_SNDBUF_PORT}, inet_aton('127.0.0.1'))) or die;
    $s->autoflush(1);
    print $s "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "X-Standin-Tag: long\r\nX-Standin-Tokens: 500\r\nX-Standin-Delay-Ms: 0\r\n"
        . "Content-Length: " . length($chat) . "\r\n\r\n$chat";
    wait_until(sub { my $r = record_of('long'); $r && $r->{end} }, 'Ollama to finish');
    wait_until(sub { admin_queue()->{processing} == 0 }, 'the slot to be free');
    my $r = request('POST /api/chat', body => $chat, port => $ENV{TEST_NGINX_SNDBUF_PORT},
                    headers => { 'X-Standin-Tag' => 'next' });
    my $got = drain($s);
    join "\n", "next: " . complete($r) . ", while the first was unread",
        "long: " . ($got =~ /"done":true.*\r\n0\r\n\r\n\z/s ? 'whole' : 'cut')
            . ", at Ollama " . (record_of('long')->{aborted} ? 'aborted' : 'served'),
        counters();
--- client_output
next: complete, while the first was unread
long: whole, at Ollama served
received=2 served=2 errors=0 aborted=0+0
--- no_error_log
seadragon cuts the stream
[error]



=== TEST 5: an engine that closes after every stream, through the recommended settings with 2 workers: 60 streams back to back all succeed, each run once
--- workers: 2
--- timeout: 60
--- http_config eval
my ($upstream) = ::recommended();
"    seadragon_zone ollama:1m capacity=1;\n    seadragon_source api priority=3;\n$upstream\n"
--- config eval
my (undef, $proxy) = ::recommended();
"$proxy\n    location /api/admin/ { seadragon_admin ollama auth=nginx; }\n"
. "    location /v1/ { seadragon_queue ollama; proxy_pass http://ollama/v1/; }\n"
--- client
    my $body = '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"hi"}]}';
    my @h = map {
        start_request('POST /v1/chat/completions', body => $body, timeout => 60,
            headers => { 'X-Standin-Tag' => "s$_", 'X-Standin-Tokens' => 3,
                         'X-Standin-Delay-Ms' => 1 })
    } 1 .. 60;
    my @res = wait_all(@h);
    my $ok = grep { ($_->{status} // 0) == 200 } @res;
    my $whole = grep { $_->{body} =~ /"content":"tok3 ".*data: \[DONE\]\n\n\z/s } @res;
    my %runs;
    push @{ $runs{$_->{tag}} }, $_ for @{ standin_requests($::closing) };
    my $once = grep { @{ $runs{"s$_"} // [] } == 1 } 1 .. 60;
    my $again = grep { my $r = $runs{"s$_"} // [];
                       @$r == 2 && !$r->[0]{status} && !$r->[0]{tokens_sent} } 1 .. 60;
    join "\n", "200: $ok, complete streams: $whole",
        "run once: " . ($once + $again) . ($again ? " ($again sent again, unanswered)" : ''),
        "gate after: " . gate(), counters();
--- client_output
200: 60, complete streams: 60
run once: 60
gate after: processing=0 waiting=0
received=60 served=60 errors=0 aborted=0+0



=== TEST 6: one client sending two streams 2 ms apart, ten times, to an engine that closes after every stream: all twenty succeed
--- workers: 2
--- timeout: 60
--- http_config eval
my ($upstream) = ::recommended();
"    seadragon_zone ollama:1m capacity=1;\n    seadragon_source api priority=3;\n$upstream\n"
--- config eval
my (undef, $proxy) = ::recommended();
"$proxy\n    location /api/admin/ { seadragon_admin ollama auth=nginx; }\n"
. "    location /v1/ { seadragon_queue ollama; proxy_pass http://ollama/v1/; }\n"
--- client
    my $body = '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"hi"}]}';
    my @res;
    for my $i (1 .. 10) {
        my @h;
        for my $j (1, 2) {
            push @h, start_request('POST /v1/chat/completions', body => $body, timeout => 30,
                headers => { 'X-Standin-Tag' => "p$i.$j", 'X-Standin-Tokens' => 3,
                             'X-Standin-Delay-Ms' => 5 });
            Time::HiRes::sleep(0.002);
        }
        push @res, wait_all(@h);
    }
    my $ok = grep { ($_->{status} // 0) == 200 && $_->{body} =~ /data: \[DONE\]\n\n\z/ } @res;
    my @bad = map { $_->{status} // $_->{error} } grep { ($_->{status} // 0) != 200 } @res;
    join "\n", "complete: $ok" . (@bad ? " (others: @bad)" : ''), counters();
--- client_output
complete: 20
received=20 served=20 errors=0 aborted=0+0



=== TEST 7: the TLS example hides the engine's own CORS headers: a refused Origin gets no allow header, an allowed one (with a chat user's token) exactly one
--- http_config eval
::tls_certificates();
::tls_example_conf()
--- config
--- client
    my @out;
    my $token = main::chat_token();
    for my $origin ('https://chat.example.com', 'https://evil.example') {
        my $r = curl('GET', 'https://api.example.com/api/tags', headers => { Origin => $origin,
            ($origin =~ /chat/ ? (Authorization => "Bearer $token") : ()) });
        my $h = $r->{headers};
        push @out, "$origin: $r->{status} allow-origin="
            . ($h->{'access-control-allow-origin'} // 'none')
            . " credentials=" . ($h->{'access-control-allow-credentials'} // 'none');
    }
    my $seen = grep { $_->{path} eq '/api/tags' && ($_->{headers}{origin} // '') } @{ standin_requests() };
    join "\n", @out, "requests that reached Ollama: $seen";
--- client_output
https://chat.example.com: 200 allow-origin=https://chat.example.com credentials=none
https://evil.example: 200 allow-origin=none credentials=none
requests that reached Ollama: 2



=== TEST 8: HTTP/2: a stream that takes nothing is cut alone; the next request runs on the same connection
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        location /api/ {
            seadragon_queue    ollama;
            proxy_pass         http://ollama;
            proxy_http_version 1.1;
            proxy_set_header   Connection "";
            proxy_set_header   Host localhost;
            proxy_buffering    off;
        }
    }
_EOC_
--- client
    # Node's http2 client gives the stream no more window while it is
    # paused, as a page that stopped reading would
    my $js = <<'JS';
const http2 = require('http2');
const [port, body] = process.argv.slice(2);
const session = http2.connect('http://127.0.0.1:' + port);
const out = (line) => process.stdout.write(line + '\n');
const open = (tag, tokens) => session.request({
    ':method': 'POST', ':path': '/api/chat', 'content-type': 'application/json',
    'x-standin-tag': tag, 'x-standin-tokens': tokens, 'x-standin-delay-ms': '0' });
const stalled = open('stalled', '1000000');
stalled.end(body);
stalled.on('response', (head) => { out('stalled ' + head[':status']); stalled.pause(); });
stalled.on('error', () => {});
stalled.on('close', () => out('stalled closed'));
process.stdin.once('data', () => {
    const next = open('next', '3');
    next.end(body);
    let data = '';
    next.on('response', (head) => out('next ' + head[':status']));
    next.on('data', (d) => { data += d; });
    next.on('end', () => {
        out('next ' + (data.includes('"done":true') ? 'complete' : 'broken'));
        session.close();
    });
});
JS
    open my $jsf, '>', servroot() . "/h2.js" or die $!;
    print $jsf $js;
    close $jsf;
    my $outf = servroot() . "/h2.out";
    my $pid = open my $node, '|-', "node " . servroot() . "/h2.js $ENV{TEST_NGINX_H2_PORT} '$::chat' > $outf";
    die "node: $!" unless $pid;
    $node->autoflush(1);
    wait_until(sub { my $r = record_of('stalled'); $r && $r->{tokens_sent} > 100 }, 'the stream');
    print $node "next\n";
    wait_until(sub { -s $outf && slurp($outf) =~ /next (complete|broken)/ }, 'the next stream', 20);
    close $node;
    wait_until(sub { admin_stats('api')->{aborted}{streaming} == 1 }, 'the abort to count');
    join "\n", slurp($outf) =~ s/\n\z//r,
        "stalled, at Ollama: " . (record_of('stalled')->{aborted} ? 'connection closed' : 'still running'),
        "gate after: " . gate(), counters();
--- client_output
stalled 200
stalled closed
next 200
next complete
stalled, at Ollama: connection closed
gate after: processing=0 waiting=0
received=2 served=1 errors=0 aborted=0+1
--- error_log eval
qr/seadragon cuts the stream of a client that took less than 1024 bytes in \d+ms/
--- no_error_log
[error]
[alert]



=== TEST 9: seadragon_stall_timeout takes a time: anything else fails nginx -t, naming the directive
--- http_config eval
(my $c = $::http_config) =~ s/seadragon_stall_timeout 2s;/seadragon_stall_timeout soon;/ or die;
$c
--- must_die
--- error_log
"seadragon_stall_timeout" directive invalid value



=== TEST 10: a reader that takes a few bytes now and then (less than 1024 in seadragon_stall_timeout) is cut all the same: it would hold the model for the whole generation
--- client
    my $s = stalled_client('drip');
    my $next = next_request('next');
    # 8 bytes every 0.4 s: 20 bytes a second, progress of a kind, but
    # nothing an answer can be read at
    my ($reads, $buf) = (0);
    my $deadline = Time::HiRes::time() + 20;
    my $during;
    while (Time::HiRes::time() < $deadline) {
        Time::HiRes::sleep(0.4);
        my $n = sysread($s, $buf, 8);
        $reads++ if $n;
        last if !$n;                              # cut: the connection ends
        $during //= gate() if $reads == 3;
        last if record_of('next') && defined record_of('next')->{end};
    }
    my $r = wait_request($next);
    my $drip = record_of('drip');
    # not drained: what the kernel still holds for a 2 KB window would
    # trickle in for minutes
    close $s;
    join "\n", "it read: " . ($reads >= 3 ? 'now and then' : "only $reads times"),
        "while it read: $during",
        "next: " . complete($r),
        "drip, at Ollama: " . ($drip->{aborted} ? 'connection closed' : 'still running'),
        "gate after: " . gate(), counters();
--- client_output
it read: now and then
while it read: processing=1 waiting=1
next: complete
drip, at Ollama: connection closed
gate after: processing=0 waiting=0
received=2 served=1 errors=0 aborted=0+1
--- error_log eval
qr/seadragon cuts the stream of a client that took less than 1024 bytes in \d+ms \(seadragon_stall_timeout\)/
--- no_error_log
[error]
[alert]
