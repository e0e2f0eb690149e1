# Hostile bodies (issue 11, findings 5 and 8): long strings that made the
# body check take quadratic time and froze the worker, and model names of
# any length that were copied, kept and logged whole.  Each block checks the
# state afterwards: the answer, what Ollama received, the counters, the
# queue, the worker's pid and the error log.
#
# No block measures time.  The check of a body runs inside the worker, so
# while it runs no other client of that worker is served; blocks 1 and 2
# send a body whose check took that worker about 20 s (24 MB in one
# string: quadratic, 8.7 s for 16 MB), then another client's request, and
# require that request to be answered (with the harness's usual 10 s) while
# the body is still in the gateway.
use lib 't/lib';
use Test::Seadragon;
use IO::Socket::INET ();

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=3;
    seadragon_source api priority=3;
    log_format model 'model=$seadragon_model status=$status';
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    client_max_body_size 40m;
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/ {
        seadragon_queue ollama;
        access_log logs/model.log model;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}';
our $MB = 1 << 20;



sub counters {
    my $s = admin_stats('api');
    "received=$s->{received} served=$s->{served} invalid=$s->{rejected}{invalid}"
        . " waiting=$s->{waiting} running=$s->{running}";
}

# the counters once every request has been counted
sub settled {
    my $total = shift;
    wait_until(sub {
        my $s = admin_stats('api');
        $s->{waiting} + $s->{running} == 0
            && $s->{served} + $s->{upstream_errors} + $s->{rejected}{invalid} == $total
    }, "$total requests counted");
    return counters();
}

sub queue_entries {
    scalar @{ json_decode(request('GET /api/admin/queue')->{body})->{entries} };
}

# a request written whole on a connection of its own; read it with answer()
sub send_whole {
    my ($body, @headers) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    print $sock join("\r\n", "POST /api/generate HTTP/1.1", "Host: localhost",
                     "Connection: close", "Content-Length: " . length($body),
                     @headers, "", "") . $body;
    return $sock;
}

sub answer {
    my $sock = shift;
    local $/;
    my $all = <$sock> // '';
    my ($status) = $all =~ m{^HTTP/1\.1 (\d+)};
    my ($body) = $all =~ m{\r\n\r\n(.*)}s;
    $body //= '';
    $body =~ s/\s+\z//;
    return ($status // 'closed') . " " . ($body =~ /"done":true/ ? 'done' : $body);
}

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: while a body of one 24 MB string is checked, another client of the same worker is answered; the body reaches Ollama whole
--- client
    my @pids = nginx_worker_pids();
    my $string = '{"model":"llama3:70b","stream":false,"prompt":"' . ('a' x (24 * $::MB)) . '"}';
    my $big = send_whole($string, "X-Standin-Hold: 1");
    # the body is written: the worker reads and checks it now
    my $small = request('POST /api/chat', body => $::chat, timeout => 10);
    my $during = said($small) =~ /^200 .*"done":true/ ? 'answered' : "not answered (" . ($small->{error} // said($small)) . ")";
    wait_until(sub { standin_stats()->{active} == 1 }, 'the body at the stand-in', 60);
    standin_release();
    join "\n", "the other client: $during", "big: " . answer($big), settled(2),
        "queue entries: " . queue_entries(), "ollama saw " . standin_stats()->{total},
        "worker " . (join(",", nginx_worker_pids()) eq join(",", @pids) ? 'unchanged' : 'changed');
--- client_output
the other client: answered
big: 200 done
received=2 served=2 invalid=0 waiting=0 running=0
queue entries: 0
ollama saw 2
worker unchanged
--- timeout: 90
--- no_error_log
[alert]
[crit]
exited on signal



=== TEST 2: a 24 MB string that never ends is refused as invalid after the whole check while another client is answered; so is an open string after the object
--- client
    my @pids = nginx_worker_pids();
    my $bad = send_whole('{"model":"llama3:70b","stream":false,"prompt":"' . ('a' x (24 * $::MB)));
    my $small = request('POST /api/chat', body => $::chat, timeout => 10);
    my $during = said($small) =~ /^200 .*"done":true/ ? 'answered' : "not answered (" . ($small->{error} // said($small)) . ")";
    my $first = answer($bad);
    my $after = said(request('POST /api/chat', body => '{"model":"llama3:70b","stream":false} "' . ('a' x $::MB)));
    join "\n", "the other client: $during", $first, $after, settled(3),
        "queue entries: " . queue_entries(), "ollama saw " . standin_stats()->{total},
        "worker " . (join(",", nginx_worker_pids()) eq join(",", @pids) ? 'unchanged' : 'changed');
--- client_output
the other client: answered
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
received=3 served=1 invalid=2 waiting=0 running=0
queue entries: 0
ollama saw 1
worker unchanged
--- timeout: 90
--- no_error_log
[alert]
[crit]
exited on signal



=== TEST 3: a model name of 256 bytes passes (ASCII or UTF-8); 257 bytes or 1 MB is a JSON 400 naming the limit, counted as invalid, never queued, never logged whole
--- client
    my @pids = nginx_worker_pids();
    my $body = sub { qq({"model":"$_[0]","stream":false,"messages":[],"x":"$_[1]"}) };
    my @said = map { said(request('POST /api/chat', body => $body->(@$_))) =~ s/^(200) .*"done":true.*/$1 done/r =~ s/^404 .*not found, try pulling.*/404 from ollama: not found/r }
        ['a' x 256, 'ascii-256'], ["\xc3\xa9" x 128, 'utf8-256'],
        ['a' x 257, 'ascii-257'], ["\xc3\xa9" x 128 . 'a', 'utf8-257'],
        ['m' x $::MB, 'mb'];
    my @got = map { ($_->{body}{x} // '?') . ":" . length($_->{model} // '') } @{ standin_requests() };
    wait_until(sub { (() = access_log_text('model.log') =~ /\n/g) == 5 }, 'five log lines');
    my @log = split /\n/, access_log_text('model.log');
    my $counters = settled(5);
    join "\n", @said, "ollama got: @got", $counters,
        "queue entries: " . queue_entries(), "queued: " . queued_count(),
        "log lines under 2 KB: " . (grep({ length > 2048 } @log) ? 'no' : 'yes'),
        "refused lines: " . join(" ", grep { /status=400/ } @log),
        "worker " . (join(",", nginx_worker_pids()) eq join(",", @pids) ? 'unchanged' : 'changed');
--- client_output
404 from ollama: not found
404 from ollama: not found
400 {"error":"invalid model name: longer than 256 bytes"}
400 {"error":"invalid model name: longer than 256 bytes"}
400 {"error":"invalid model name: longer than 256 bytes"}
ollama got: ascii-256:256 utf8-256:128
received=5 served=2 invalid=3 waiting=0 running=0
queue entries: 0
queued: 2
log lines under 2 KB: yes
refused lines: model=- status=400 model=- status=400 model=- status=400
worker unchanged
--- no_error_log
[alert]
[crit]
exited on signal



=== TEST 4: the limit is the top-level model's, whatever the pieces: a long "model" nested in options passes, a long one sent in 1-byte chunks is refused
--- client
    my $nested = '{"model":"llama3:70b","stream":false,"messages":[],"options":{"model":"' . ('n' x 1000) . '"}}';
    my $long = '{"stream":false,"model":"' . ('c' x 300) . '","messages":[]}';
    my $chunked = join('', map { sprintf("%x\r\n%s\r\n", 1, $_) } split //, $long) . "0\r\n\r\n";
    my $r = request('POST /api/chat', raw => "POST /api/chat HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n$chunked");
    join "\n", said(request('POST /api/chat', body => $nested)) =~ s/^(200) .*/$1/r,
        said($r), settled(2), "ollama got " . join(",", map { $_->{model} } @{ standin_requests() });
--- client_output
200
400 {"error":"invalid model name: longer than 256 bytes"}
received=2 served=1 invalid=1 waiting=0 running=0
ollama got llama3:70b
--- no_error_log
[alert]
[crit]
