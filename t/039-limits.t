# Limits per key (issue 14): requests per minute, tokens per UTC day and
# requests waiting or running at once, stored with the key and changed
# live with seadragon-store and the admin API.  Over a limit a request is
# refused with 429 before it queues, in Ollama's shape on /api/ and
# OpenAI's on /v1/, counted as rejected.quota; each block checks what
# reached the stand-in, the counters and the queue afterwards.  The window
# arithmetic (recovery when a window passes) is t/040-limit-unit.t's.
use lib 't/lib';
use Test::Seadragon;
use POSIX ();

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

our $dir = store_init();
sub tool { store_tool(@_) }
our $ops = tool('key create ops --source admin');

workers(2);

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=4 max_queued=20 tick=50ms;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;

    # reuseport spreads connections over the workers
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
            add_header X-Pid $pid always;
        }
    }
_EOC_

our $config = <<'_EOC_';
    location /admin/ { seadragon_admin ollama; }
    location = /metrics { seadragon_metrics ollama; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
        add_header X-Pid $pid always;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

our %body = (
    '/api/chat' => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi there"}],"stream":false}',
    '/v1/chat/completions' => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi there"}]}',
);

# a request of a key; %h: more headers, and port => for another server
sub call {
    my ($path, $key, %h) = @_;
    my $port = delete $h{port};
    my $body = delete $h{body} // $body{$path};
    return request("POST $path", body => $body,
        ($port ? (port => $port) : ()),
        headers => { Authorization => "Bearer $key", 'X-Standin-Tokens' => 2,
                     'X-Standin-Delay-Ms' => 0, %h });
}

sub start_call {
    my ($path, $key, %h) = @_;
    my $port = delete $h{port};
    return start_request("POST $path", body => $body{$path},
        ($port ? (port => $port) : ()),
        headers => { Authorization => "Bearer $key", 'X-Standin-Tokens' => 2,
                     'X-Standin-Delay-Ms' => 0, %h });
}

sub admin {
    my ($what, %opts) = @_;
    my $method = delete $opts{method} // 'GET';
    return request("$method /admin/$what",
        headers => { Authorization => "Bearer $ops" }, %opts);
}

sub stats { json_decode(admin('stats')->{body})->{sources} }
sub queue { json_decode(admin('queue')->{body}) }

# status, Retry-After, content type and body; the seconds of an rpm
# window's refusal shown as N after checking that both say the same
sub summary {
    my ($r) = @_;
    my $retry = $r->{headers}{'retry-after'} // '-';
    my $body = $r->{body};
    if ($body =~ /try again in (\d+) seconds/) {
        die "Retry-After $retry, but the message says $1" unless $1 eq $retry;
        die "an rpm window is at most 60 s: $retry" unless $retry >= 1 && $retry <= 60;
        $body =~ s/try again in \d+ seconds/try again in N seconds/;
        $retry = 'N';
    }
    return "$r->{status} retry=$retry" . ($r->{status} == 200 ? ''
        : " $r->{headers}{'content-type'} $body");
}

# the tags of what reached the stand-in
sub got { join(',', map { $_->{tag} // '-' } @{ standin_requests() }) || 'nothing' }

# a database's records, [key, value] each, and records written into one
# behind the tool's and the gateway's back
sub dump_db {
    my ($db) = @_;
    my $out = `mdb_dump -s $db '$ENV{TEST_NGINX_STORE}'`;
    die "mdb_dump -s $db failed" if $?;
    my ($data) = $out =~ /^HEADER=END\n(.*?)^DATA=END$/ms;
    my @hex = map { s/^ //r } split /\n/, $data // '';
    my @records;
    push @records, [ pack('H*', shift @hex), pack('H*', shift @hex) ] while @hex;
    return @records;
}

sub load_db {
    my ($db, %records) = @_;
    my $input = "$dir/load";
    open my $fh, '>', $input or die $!;
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n";
    print $fh ' ', unpack('H*', $_), "\n ", unpack('H*', $records{$_}), "\n"
        for sort keys %records;
    print $fh "DATA=END\n";
    close $fh;
    system("mdb_load -s $db -f '$input' '$ENV{TEST_NGINX_STORE}'") == 0
        or die "mdb_load -s $db failed";
}

# a usage record of today, as the gateway writes them
# (ngx_http_seadragon_store_usage.c)
sub usage_load {
    my ($principal, $model, $prompt, $completion) = @_;
    my $day = int(time / 86400);
    load_db('usage', pack('N', $day) . $principal . "\0" . $model
            => pack('V V Q< Q< Q< Q< Q< Q< Q<', 1, 0, 1, $prompt, $completion,
                    0, 0, 0, 0));
}

# runs the tool; status, stdout and stderr
sub sd {
    my ($args) = @_;
    my $tool = store_tool_path();
    my $out = `'$tool' --store '$ENV{TEST_NGINX_STORE}' $args 2>'$dir/sd.err'`;
    my $status = $? >> 8;
    open my $fh, '<', "$dir/sd.err";
    my $err = do { local $/; <$fh> };
    return { status => $status, out => $out, err => $err };
}

sub listed {
    my ($name) = @_;
    my ($line) = grep { /^\Q$name\E\t/ } split /\n/, tool('key list');
    my @f = split /\t/, $line // '';
    return join ' ', @f[5 .. 7];
}

# a key's weight as "key list" shows it (the last column)
sub weight_of {
    my ($name) = @_;
    my ($line) = grep { /^\Q$name\E\t/ } split /\n/, tool('key list');
    my @f = split /\t/, $line // '';
    return $f[8] // 'none';
}

# a key's record as stored, by its name; undef: no such key
sub record_of {
    my ($name) = @_;
    my ($named) = grep { $_->[0] eq $name } dump_db('key_names');
    return undef unless $named;
    my ($rec) = grep { $_->[0] eq $named->[1] } dump_db('keys');
    return $rec ? $rec->[1] : undef;
}

run_tests();

__DATA__

=== TEST 1: rpm: the third request of a minute is refused with 429 on /api/, before it queues, and counted as rejected.quota
--- client
    my $key = tool('key create rpm-api --source chat --rpm 2');
    my @r = map { call('/api/chat', $key, 'X-Standin-Tag' => "r$_") } 1 .. 3;
    # a request counts as served when nginx frees it, which may come after
    # its client has the answer (a lingering close)
    wait_until(sub { stats()->{chat}{served} >= 2 }, 'r2 to be counted');
    my $s = stats()->{chat};
    my $q = queue();
    join "\n", (map { summary($_) } @r), "stand-in got: " . got(),
        "chat: received $s->{received}, served $s->{served}, quota $s->{rejected}{quota}, queue_full $s->{rejected}{queue_full}",
        "queue: $q->{queue_length} waiting, " . scalar(@{ $q->{running} }) . " running",
        "listed: " . listed('rpm-api');
--- client_output
200 retry=-
200 retry=-
429 retry=N application/json {"error":"rate limit exceeded: this key may make 2 requests a minute; try again in N seconds"}
stand-in got: r1,r2
chat: received 3, served 2, quota 1, queue_full 0
queue: 0 waiting, 0 running
listed: 2 - -
--- error_log
seadragon key "rpm-api" is over its limit rpm



=== TEST 2: rpm on /v1/: OpenAI's shape, with type and code rate_limit_exceeded
--- client
    my $key = tool('key create rpm-v1 --source chat --rpm 1');
    my @r = map { call('/v1/chat/completions', $key, 'X-Standin-Tag' => "v$_") } 1 .. 2;
    my $e = json_decode($r[1]{body});
    join "\n", (map { summary($_) } @r), "stand-in got: " . got(),
        "type $e->{error}{type}, code $e->{error}{code}, param " . ($e->{error}{param} // 'null'),
        "quota " . stats()->{chat}{rejected}{quota};
--- client_output
200 retry=-
429 retry=N application/json {"error":{"message":"rate limit exceeded: this key may make 1 requests a minute; try again in N seconds","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}
stand-in got: v1
type rate_limit_exceeded, code rate_limit_exceeded, param null
quota 1



=== TEST 3: rpm holds across 2 workers: exactly 5 of the requests of a minute pass, whichever worker takes them
--- client
    my $key = tool('key create rpm-two --source chat --rpm 5');
    my (%pids, $ok, $refused);
    my $n = 0;
    while ($n < 40 && ($n < 12 || keys %pids < 2)) {
        my $r = call('/api/chat', $key, port => $ENV{TEST_NGINX_SPREAD_PORT},
                     'X-Standin-Tag' => "t$n");
        $n++;
        $pids{ $r->{headers}{'x-pid'} }++;
        $r->{status} == 200 ? $ok++ : $r->{status} == 429 ? $refused++ : die summary($r);
    }
    my $s = stats()->{chat};
    join "\n", "workers: " . scalar(keys %pids), "passed: $ok",
        "refused: " . ($refused == $n - 5 ? 'the rest' : $refused),
        "stand-in got: " . scalar(@{ standin_requests() }),
        "quota counted: " . ($s->{rejected}{quota} == $n - 5 ? 'each' : $s->{rejected}{quota}),
        "received = served + quota: " . ($s->{received} == $s->{served} + $s->{rejected}{quota} ? 'yes' : 'no');
--- client_output
workers: 2
passed: 5
refused: the rest
stand-in got: 5
quota counted: each
received = served + quota: yes



=== TEST 4: max_concurrent: a second request while one runs is refused on both APIs and on the other worker; the place is given back when it ends
--- client
    my $key = tool('key create conc --source chat --max-concurrent 1');
    my $held = start_call('/api/chat', $key, 'X-Standin-Tag' => 'held',
                          'X-Standin-Hold' => 1);
    wait_until(sub { @{ standin_requests() } == 1 }, 'the first to reach the stand-in');
    my $holder = queue()->{running}[0]{worker};
    my @out = (summary(call('/api/chat', $key, 'X-Standin-Tag' => 'second')),
               summary(call('/v1/chat/completions', $key, 'X-Standin-Tag' => 'third')));
    # a connection the other worker takes
    my $other;
    for (1 .. 60) {
        my $r = call('/api/chat', $key, port => $ENV{TEST_NGINX_SPREAD_PORT},
                     'X-Standin-Tag' => 'spread');
        die summary($r) unless $r->{status} == 429;
        if ($r->{headers}{'x-pid'} != $holder) { $other = $r; last }
    }
    push @out, 'the other worker: ' . ($other ? summary($other) : 'never reached');
    my $q = queue();
    push @out, "queue: $q->{queue_length} waiting, " . scalar(@{ $q->{running} }) . " running";
    standin_release();
    push @out, 'held: ' . summary(wait_request($held));
    push @out, 'after: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'after'));
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
429 retry=2 application/json {"error":"rate limit exceeded: this key already has 1 requests waiting or running, the most it may"}
429 retry=2 application/json {"error":{"message":"rate limit exceeded: this key already has 1 requests waiting or running, the most it may","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}
the other worker: 429 retry=2 application/json {"error":"rate limit exceeded: this key already has 1 requests waiting or running, the most it may"}
queue: 0 waiting, 1 running
held: 200 retry=-
after: 200 retry=-
stand-in got: held,after



=== TEST 5: max_concurrent counts requests parked in the line too, and a client that leaves gives its place back
--- client
    my $key = tool('key create parked --source chat --max-concurrent 2');
    my $other = tool('key create filler --source chat');
    # the gate's 4 slots taken by another key: the next requests park
    my @fill = map { start_call('/api/chat', $other, 'X-Standin-Tag' => "fill$_",
                                'X-Standin-Hold' => 1) } 1 .. 4;
    wait_until(sub { @{ standin_requests() } == 4 }, 'the gate to fill');
    my $p1 = start_call('/api/chat', $key, 'X-Standin-Tag' => 'p1');
    my $p2 = start_call('/api/chat', $key, 'X-Standin-Tag' => 'p2');
    wait_until(sub { queue()->{queue_length} == 2 }, 'two to park');
    my @out = ('third: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'p3')));
    abort_request($p2);
    wait_until(sub { queue()->{queue_length} == 1 }, 'the aborted one to leave');
    my $p4 = start_call('/api/chat', $key, 'X-Standin-Tag' => 'p4');
    wait_until(sub { queue()->{queue_length} == 2 }, 'p4 to park in its place');
    standin_release();
    push @out, map { summary(wait_request($_)) } $p1, $p4, @fill;
    my $s = stats()->{chat};
    push @out, "quota $s->{rejected}{quota}, aborted while parked $s->{aborted}{parked}";
    push @out, 'stand-in got: ' . join ',', sort split /,/, got();
    join "\n", @out;
--- client_output
third: 429 retry=2 application/json {"error":"rate limit exceeded: this key already has 2 requests waiting or running, the most it may"}
200 retry=-
200 retry=-
200 retry=-
200 retry=-
200 retry=-
200 retry=-
quota 1, aborted while parked 1
stand-in got: fill1,fill2,fill3,fill4,p1,p4



=== TEST 6: tokens per day: what the store counted today for the key is used, so a restart gives no new day; refused until 00:00 UTC, and a limit raised live lets it in
--- client
    my $key = tool('key create carol --source chat --tokens-per-day 100');
    usage_load('key:carol', 'llama3:70b', 60, 30);
    usage_load('key:carol', 'qwen2.5-coder:7b', 4, 6);
    usage_load('key:other', 'llama3:70b', 1000, 1000);
    my $r1 = call('/api/chat', $key, 'X-Standin-Tag' => 'c1');
    my $r2 = call('/v1/chat/completions', $key, 'X-Standin-Tag' => 'c2');
    my $midnight = 86400 - time % 86400;
    my @out;
    for ($r1, $r2) {
        my $retry = $_->{headers}{'retry-after'};
        push @out, "Retry-After until 00:00 UTC: " . (abs($retry - $midnight) <= 2 ? 'yes' : "no ($retry, $midnight)");
        (my $s = summary($_)) =~ s/retry=\d+/retry=M/;
        push @out, $s;
    }
    push @out, 'stand-in got: ' . got();
    tool('key set carol --tokens-per-day 101');
    push @out, 'raised: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'c3'));
    push @out, 'stand-in got: ' . got();
    push @out, 'quota ' . stats()->{chat}{rejected}{quota};
    join "\n", @out;
--- client_output
Retry-After until 00:00 UTC: yes
429 retry=M application/json {"error":"rate limit exceeded: this key's 100 tokens a day are used up (100 today); they renew at 00:00 UTC"}
Retry-After until 00:00 UTC: yes
429 retry=M application/json {"error":{"message":"rate limit exceeded: this key's 100 tokens a day are used up (100 today); they renew at 00:00 UTC","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}
stand-in got: nothing
raised: 200 retry=-
stand-in got: c3
quota 2



=== TEST 7: tokens per day: the prompt and completion tokens of answers, whole or streamed, count, so the next request is refused once they reach the limit
--- client
    # "hi there" is 2 prompt tokens to the stand-in, and it sends 8
    my $key = tool('key create dave --source chat --tokens-per-day 20');
    my $r1 = call('/api/chat', $key, 'X-Standin-Tag' => 'd1', 'X-Standin-Tokens' => 8);
    my $a = json_decode($r1->{body});
    my $r2 = call('/api/chat', $key, 'X-Standin-Tag' => 'd2', 'X-Standin-Tokens' => 8,
                  body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi there"}]}');
    my ($last) = grep { /"done":true/ } split /\n/, $r2->{body};
    my $b = json_decode($last);
    my $r3 = call('/api/chat', $key, 'X-Standin-Tag' => 'd3');
    (my $s = summary($r3)) =~ s/retry=\d+/retry=M/;
    join "\n", "the stand-in sent: $a->{prompt_eval_count} + $a->{eval_count}, then $b->{prompt_eval_count} + $b->{eval_count} streamed",
        summary($r1), summary($r2), $s, 'stand-in got: ' . got();
--- client_output
the stand-in sent: 2 + 8, then 2 + 8 streamed
200 retry=-
200 retry=-
429 retry=M application/json {"error":"rate limit exceeded: this key's 20 tokens a day are used up (20 today); they renew at 00:00 UTC"}
stand-in got: d1,d2



=== TEST 8: a limit changed with the tool applies to the next request, and "none" takes it away
--- client
    my $key = tool('key create erin --source chat');
    my @out = map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "e$_")) } 1 .. 3;
    push @out, tool('key set erin --rpm 1');
    push @out, map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "f$_")) } 1 .. 2;
    push @out, tool('key set erin --rpm none');
    push @out, summary(call('/api/chat', $key, 'X-Standin-Tag' => 'g'));
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
200 retry=-
200 retry=-
200 retry=-
the key "erin" now has rpm 1, tokens-per-day none, max-concurrent none, weight 1
200 retry=-
429 retry=N application/json {"error":"rate limit exceeded: this key may make 1 requests a minute; try again in N seconds"}
the key "erin" now has rpm none, tokens-per-day none, max-concurrent none, weight 1
200 retry=-
stand-in got: e1,e2,e3,f1,g



=== TEST 9: limits hold across a reload: the zone keeps what the key used
--- client
    my $key = tool('key create frank --source chat --rpm 2 --max-concurrent 1');
    my @out = map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "h$_")) } 1 .. 2;
    nginx_reload();
    push @out, summary(call('/api/chat', $key, 'X-Standin-Tag' => 'h3'));
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
200 retry=-
200 retry=-
429 retry=N application/json {"error":"rate limit exceeded: this key may make 2 requests a minute; try again in N seconds"}
stand-in got: h1,h2



=== TEST 10: a version 1 record (no limits) still works, lists without limits, and a limit set on it makes it version 2 with nothing else changed
--- client
    my $key = tool('key create old --source chat');
    my ($named) = grep { $_->[0] eq 'old' } dump_db('key_names');
    my ($rec) = grep { $_->[0] eq $named->[1] } dump_db('keys');
    my ($version, $flags, $created, $expires, $name, $source)
        = unpack 'V V q< q< Z64 Z32', $rec->[1];
    load_db('keys', $named->[1] => pack('V V q< q< a64 a32', 1, 0, $created,
                                        0, 'old', 'chat'));
    my @out = ('version 1 record of ' . length((grep { $_->[0] eq $named->[1] } dump_db('keys'))[0][1]) . ' bytes');
    push @out, map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "o$_")) } 1 .. 2;
    push @out, 'listed: ' . listed('old');
    my ($k) = grep { $_->{name} eq 'old' } @{ json_decode(admin('keys')->{body})->{keys} };
    push @out, 'admin: ' . json_encode($k->{limits}) . " $k->{state} $k->{source}";
    push @out, tool('key set old --rpm 1');
    my ($new) = grep { $_->[0] eq $named->[1] } dump_db('keys');
    my @f = unpack 'V V q< q< Z64 Z32 Q< V V', $new->[1];
    push @out, 'now ' . length($new->[1]) . " bytes: version $f[0], "
        . ($f[2] == $created ? 'created kept' : 'created changed') . ", $f[4] $f[5], rpm $f[7]";
    push @out, map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "p$_")) } 1 .. 2;
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
version 1 record of 120 bytes
200 retry=-
200 retry=-
listed: - - -
admin: {"max_concurrent":null,"rpm":null,"tokens_per_day":null} active chat
the key "old" now has rpm 1, tokens-per-day none, max-concurrent none, weight 1
now 144 bytes: version 3, created kept, old chat, rpm 1
200 retry=-
429 retry=N application/json {"error":"rate limit exceeded: this key may make 1 requests a minute; try again in N seconds"}
stand-in got: o1,o2,p1



=== TEST 11: the admin API sets limits (PATCH keys/NAME, and with POST keys), lists them in GET keys, and they apply to the next request
--- client
    my $c = admin('keys', method => 'POST',
                  body => '{"name":"gina","source":"chat","max_concurrent":3}');
    my $created = json_decode($c->{body});
    my $key = $created->{key};
    my @out = ("created: $c->{status} " . json_encode($created->{limits}));
    my $p = admin('keys/gina', method => 'PATCH', body => '{"rpm":1,"tokens_per_day":5000}');
    push @out, "patch: $p->{status} $p->{body}";
    push @out, 'tool lists: ' . listed('gina');
    my ($k) = grep { $_->{name} eq 'gina' } @{ json_decode(admin('keys')->{body})->{keys} };
    push @out, 'GET keys: ' . json_encode($k->{limits});
    push @out, map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "g$_")) } 1 .. 2;
    $p = admin('keys/gina', method => 'PATCH', body => '{"rpm":null,"max_concurrent":0}');
    push @out, "patch: $p->{status} $p->{body}";
    push @out, summary(call('/api/chat', $key, 'X-Standin-Tag' => 'g3'));
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
created: 201 {"max_concurrent":3,"rpm":null,"tokens_per_day":null}
patch: 200 {"name":"gina","limits":{"rpm":1,"tokens_per_day":5000,"max_concurrent":3},"weight":1}
tool lists: 1 5000 3
GET keys: {"max_concurrent":3,"rpm":1,"tokens_per_day":5000}
200 retry=-
429 retry=N application/json {"error":"rate limit exceeded: this key may make 1 requests a minute; try again in N seconds"}
patch: 200 {"name":"gina","limits":{"rpm":null,"tokens_per_day":5000,"max_concurrent":null},"weight":1}
200 retry=-
stand-in got: g1,g3
--- error_log
seadragon admin set the limits of the key "gina": rpm 1, tokens_per_day 5000, max_concurrent 3 (0: none)



=== TEST 12: the admin API refuses bad limits with a clear JSON error and changes nothing; no key: 401
--- client
    tool('key create hank --source chat --rpm 7');
    my @out;
    for my $body ('{"rpm":-1}', '{"rpm":"5"}', '{"rpm":1.5}', '{"rpm":1000001}',
                  '{"tokens_per_day":1000000000000001}', '{"max_concurrent":100001}',
                  '{"max_concurrent":true}', '{}', '{"note":"x"}', '[1]', 'rpm=1')
    {
        my $r = admin('keys/hank', method => 'PATCH', body => $body);
        push @out, "$body: $r->{status} $r->{headers}{'content-type'} $r->{body}";
    }
    my $r = admin('keys/nobody', method => 'PATCH', body => '{"rpm":1}');
    push @out, "unknown key: $r->{status} $r->{body}";
    $r = admin('keys/hank', method => 'PUT', body => '{"rpm":1}');
    push @out, "PUT: $r->{status} allow=$r->{headers}{allow}";
    $r = admin('keys', method => 'POST', body => '{"name":"ivy","source":"chat","rpm":0.5}');
    push @out, "create: $r->{status} $r->{body}";
    $r = request('PATCH /admin/keys/hank', body => '{"rpm":1}');
    push @out, "no key: $r->{status} $r->{body}";
    push @out, 'hank: ' . listed('hank') . ', ivy: ' . (listed('ivy') eq '  ' ? 'none' : 'exists');
    join "\n", @out;
--- client_output
{"rpm":-1}: 400 application/json {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
{"rpm":"5"}: 400 application/json {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
{"rpm":1.5}: 400 application/json {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
{"rpm":1000001}: 400 application/json {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
{"tokens_per_day":1000000000000001}: 400 application/json {"error":"\"tokens_per_day\" must be the tokens a UTC day, a whole number from 0 to 1000000000000000, or null for no limit"}
{"max_concurrent":100001}: 400 application/json {"error":"\"max_concurrent\" must be the requests waiting or running at once, a whole number from 0 to 100000, or null for no limit"}
{"max_concurrent":true}: 400 application/json {"error":"\"max_concurrent\" must be the requests waiting or running at once, a whole number from 0 to 100000, or null for no limit"}
{}: 400 application/json {"error":"nothing to change: give \"rpm\", \"tokens_per_day\", \"max_concurrent\" or \"weight\""}
{"note":"x"}: 400 application/json {"error":"nothing to change: give \"rpm\", \"tokens_per_day\", \"max_concurrent\" or \"weight\""}
[1]: 400 application/json {"error":"Invalid JSON: expected an object"}
rpm=1: 400 application/json {"error":"Invalid JSON: expected an object"}
unknown key: 404 {"error":"there is no key with this name"}
PUT: 405 allow=DELETE, PATCH
create: 400 {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
no key: 401 {"error":"admin key required"}
hank: 7 - -, ivy: none



=== TEST 13: the tool refuses bad limits with a clear message and exit 2, and changes nothing
--- client
    tool('key create jack --source chat --max-concurrent 4');
    my @out;
    for my $args ('key create kim --source chat --rpm abc',
                  'key create kim --source chat --rpm 1000001',
                  'key create kim --source chat --tokens-per-day 1000000000000001',
                  'key create kim --source chat --max-concurrent -1',
                  'key set jack --rpm 1.5', 'key set jack --rpm ""',
                  'key set jack', 'key set nobody --rpm 1',
                  'key set jack --rpm 1 --rpm 2', 'key set jack --limit 3')
    {
        my $r = sd($args);
        my ($first) = split /\n/, $r->{err};
        push @out, "$args: $r->{status} $first";
    }
    push @out, 'jack: ' . listed('jack') . ', kim: ' . (listed('kim') eq '  ' ? 'none' : 'exists');
    join "\n", @out;
--- client_output
key create kim --source chat --rpm abc: 2 seadragon-store: key create: invalid --rpm "abc": it is not a whole number or "none"; expected requests a minute, 0 to 1000000, or none for no limit
key create kim --source chat --rpm 1000001: 2 seadragon-store: key create: invalid --rpm "1000001": it is more than the most a limit may be; expected requests a minute, 0 to 1000000, or none for no limit
key create kim --source chat --tokens-per-day 1000000000000001: 2 seadragon-store: key create: invalid --tokens-per-day "1000000000000001": it is more than the most a limit may be; expected tokens a UTC day, 0 to 1000000000000000, or none for no limit
key create kim --source chat --max-concurrent -1: 2 seadragon-store: key create: invalid --max-concurrent "-1": it is not a whole number or "none"; expected requests parked or running at once, 0 to 100000, or none for no limit
key set jack --rpm 1.5: 2 seadragon-store: key set: invalid --rpm "1.5": it is not a whole number or "none"; expected requests a minute, 0 to 1000000, or none for no limit
key set jack --rpm "": 2 seadragon-store: key set: invalid --rpm "": it is not a whole number or "none"; expected requests a minute, 0 to 1000000, or none for no limit
key set jack: 2 seadragon-store: key set: nothing to set: give --rpm, --tokens-per-day, --max-concurrent or --weight
key set nobody --rpm 1: 2 seadragon-store: there is no key named "nobody" (see "key list")
key set jack --rpm 1 --rpm 2: 2 seadragon-store: key set: --rpm is given twice
key set jack --limit 3: 2 seadragon-store: key set: unknown option "--limit"
jack: - - 4, kim: none



=== TEST 14: rejected.quota is in the metrics, by source
--- client
    my $key = tool('key create lee --source chat --rpm 1');
    call('/api/chat', $key) for 1 .. 3;
    my $m = request('GET /metrics')->{body};
    join "\n", grep { /reason="quota"/ } split /\n/, $m;
--- client_output_like
seadragon_requests_rejected_total\{[^}]*source="chat"[^}]*reason="quota"[^}]*\} 2



=== TEST 15: a worker killed with SIGKILL while a key's request runs gives the key's place back when it is reaped
--- client
    my $key = tool('key create kill --source chat --max-concurrent 1');
    my $held = start_call('/api/chat', $key, 'X-Standin-Tag' => 'held',
                          'X-Standin-Hold' => 1);
    wait_until(sub { @{ standin_requests() } == 1 }, 'the first to reach the stand-in');
    my $holder = queue()->{running}[0]{worker};
    my @out = ('while it runs: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'refused')));
    kill 'KILL', $holder or die "kill $holder: $!";
    wait_request($held);
    my $r;
    wait_until(sub { $r = call('/api/chat', $key, 'X-Standin-Tag' => 'after');
                     $r->{status} == 200 }, 'the key to be served again');
    push @out, 'after the reaping: ' . summary($r);
    push @out, 'worker alive: ' . (grep({ $_ == $holder } nginx_worker_pids()) ? 'the killed one' : 'new ones only');
    standin_release();
    push @out, 'stand-in got: ' . join ',', grep { $_ ne 'refused' } split /,/, got();
    join "\n", @out;
--- client_output
while it runs: 429 retry=2 application/json {"error":"rate limit exceeded: this key already has 1 requests waiting or running, the most it may"}
after the reaping: 200 retry=-
worker alive: new ones only
stand-in got: held,after
--- error_log
reclaimed 1 entries of zone "ollama"



=== TEST 16: tokens per day: an OpenAI stream without usage counts its chunks, the estimate
--- client
    my $key = tool('key create est --source chat --tokens-per-day 4');
    my $r1 = call('/v1/chat/completions', $key, 'X-Standin-Tag' => 'e1', 'X-Standin-Tokens' => 4,
                  body => '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"hi there"}]}');
    my $chunks = () = $r1->{body} =~ /"content":"[^"]+"/g;
    my $r2 = call('/v1/chat/completions', $key, 'X-Standin-Tag' => 'e2');
    (my $s = summary($r2)) =~ s/retry=\d+/retry=M/;
    join "\n", "content chunks: $chunks", summary($r1), $s, 'stand-in got: ' . got();
--- client_output
content chunks: 4
200 retry=-
429 retry=M application/json {"error":{"message":"rate limit exceeded: this key's 4 tokens a day are used up (4 today); they renew at 00:00 UTC","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}
stand-in got: e1



=== TEST 17: a key's place and its answer's tokens are settled when the answer's last byte passes, not when nginx frees the request (a lingering close keeps it for seconds)
--- config
    lingering_close always;
    lingering_timeout 20s;
    lingering_time 30s;
    keepalive_timeout 0;
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- client
    use IO::Socket::INET;
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    # one request on a connection the client keeps open after its answer:
    # nginx lingers on it, and frees the request only when it closes
    my $linger = sub {
        my ($key, $tag, $tokens) = @_;
        my $body = $body{'/api/chat'};
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
        print $s "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            . "Authorization: Bearer $key\r\nX-Standin-Tag: $tag\r\nX-Standin-Tokens: $tokens\r\n"
            . "X-Standin-Delay-Ms: 0\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
        my $answer = '';
        while ($answer !~ /\r\n\r\n/ || length($answer) < index($answer, "\r\n\r\n") + 4
                   + (($answer =~ /^Content-Length: (\d+)/mi)[0] // 0)) {
            my $n = sysread($s, $answer, 65536, length $answer);
            die "the answer ended early: $answer" unless $n;
        }
        return ($s, $answer =~ m{^HTTP/1.1 (\d+)} ? $1 : 'none');
    };
    my $one = tool('key create lingerer --source chat --max-concurrent 1');
    my $few = tool('key create thrifty --source chat --tokens-per-day 10');
    my ($s1, $st1) = $linger->($one, 'l1', 2);
    my $r = call('/api/chat', $one, 'X-Standin-Tag' => 'l2');
    my @out = ("max-concurrent 1: first $st1, the next while the first lingers: " . summary($r));
    my ($s2, $st2) = $linger->($few, 't1', 8);
    $r = call('/api/chat', $few, 'X-Standin-Tag' => 't2');
    (my $s = summary($r)) =~ s/retry=\d+/retry=M/;
    push @out, "tokens-per-day 10: first $st2 (2 + 8 tokens), the next while the first lingers: $s";
    close $_ for $s1, $s2;
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
max-concurrent 1: first 200, the next while the first lingers: 200 retry=-
tokens-per-day 10: first 200 (2 + 8 tokens), the next while the first lingers: 429 retry=M application/json {"error":"rate limit exceeded: this key's 10 tokens a day are used up (10 today); they renew at 00:00 UTC"}
stand-in got: l1,l2,t1



=== TEST 18: a key's weight (issue 15): 1 unless given, set by PATCH keys/NAME and by POST keys, shown by GET keys and the tool, stored in a version 3 record; the key still serves
--- client
    my $key = tool('key create wanda --source chat');
    tool('key create wendy --source chat --rpm 9');
    my ($w) = grep { $_->{name} eq 'wanda' } @{ json_decode(admin('keys')->{body})->{keys} };
    my @out = ("new: GET keys weight $w->{weight}, tool " . weight_of('wanda'));
    my $before = record_of('wendy');
    my $p = admin('keys/wanda', method => 'PATCH', body => '{"weight":3}');
    push @out, "patch: $p->{status} $p->{body}";
    ($w) = grep { $_->{name} eq 'wanda' } @{ json_decode(admin('keys')->{body})->{keys} };
    push @out, "GET keys weight $w->{weight}, tool " . weight_of('wanda');
    my @f = unpack 'V V q< q< Z64 Z32 Q< V V V V', record_of('wanda');
    push @out, 'record: ' . length(record_of('wanda')) . " bytes, version $f[0], weight $f[9], reserved $f[10]";
    push @out, 'the other key: ' . (record_of('wendy') eq $before ? 'unchanged' : 'changed');
    $p = admin('keys/wanda', method => 'PATCH', body => '{"weight":1000,"rpm":5}');
    push @out, "patch: $p->{status} $p->{body}";
    my $c = admin('keys', method => 'POST', body => '{"name":"wes","source":"chat","weight":4}');
    my $created = json_decode($c->{body});
    push @out, "created: $c->{status} weight $created->{weight}, tool " . weight_of('wes');
    push @out, map { summary(call('/api/chat', $_, 'X-Standin-Tag' => 'w')) } $key, $created->{key};
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
new: GET keys weight 1, tool 1
patch: 200 {"name":"wanda","limits":{"rpm":null,"tokens_per_day":null,"max_concurrent":null},"weight":3}
GET keys weight 3, tool 3
record: 144 bytes, version 3, weight 3, reserved 0
the other key: unchanged
patch: 200 {"name":"wanda","limits":{"rpm":5,"tokens_per_day":null,"max_concurrent":null},"weight":1000}
created: 201 weight 4, tool 4
200 retry=-
200 retry=-
stand-in got: w,w



=== TEST 19: the admin API refuses a bad weight with a clear JSON 400 and changes nothing: not the key, not its limits, not another key, and POST keys makes no key
--- client
    tool('key create xena --source chat --rpm 7 --weight 5');
    tool('key create xia --source chat');
    my %before = map { $_ => record_of($_) } qw(xena xia);
    my @out;
    for my $body ('{"weight":0}', '{"weight":1001}', '{"weight":-1}', '{"weight":"2"}',
                  '{"weight":1.5}', '{"weight":null}', '{"weight":true}', '{"weight":[2]}',
                  '{"weight":18446744073709551617}', '{"rpm":1,"weight":0}',
                  '{"weight":2,"rpm":-1}')
    {
        my $r = admin('keys/xena', method => 'PATCH', body => $body);
        push @out, "$body: $r->{status} $r->{headers}{'content-type'} $r->{body}";
        push @out, 'changed!' if grep { record_of($_) ne $before{$_} } qw(xena xia);
    }
    my $r = admin('keys', method => 'POST', body => '{"name":"xavier","source":"chat","weight":0}');
    push @out, "create: $r->{status} $r->{body}";
    push @out, 'xena: ' . listed('xena') . ' weight ' . weight_of('xena')
        . ', xia: weight ' . weight_of('xia') . ', xavier: ' . (defined record_of('xavier') ? 'exists' : 'none');
    join "\n", @out;
--- client_output
{"weight":0}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":1001}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":-1}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":"2"}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":1.5}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":null}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":true}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":[2]}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":18446744073709551617}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"rpm":1,"weight":0}: 400 application/json {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
{"weight":2,"rpm":-1}: 400 application/json {"error":"\"rpm\" must be the requests a minute, a whole number from 0 to 1000000, or null for no limit"}
create: 400 {"error":"\"weight\" must be the key's share in fair queuing, a whole number from 1 (the default) to 1000"}
xena: 7 - - weight 5, xia: weight 1, xavier: none



=== TEST 20: the tool sets a weight with key create and key set, lists it last in key list, and refuses a bad one with exit 2, changing nothing
--- client
    tool('key create yves --source chat --weight 2');
    tool('key create yuri --source chat');
    my @out = ('header: ' . (split /\n/, tool('key list'))[0] =~ s/\t/ /gr);
    push @out, 'yves ' . weight_of('yves') . ', yuri ' . weight_of('yuri');
    push @out, tool('key set yves --weight 9 --max-concurrent 2');
    my %before = map { $_ => record_of($_) } qw(yves yuri);
    for my $args ('key set yves --weight 0', 'key set yves --weight 1001',
                  'key set yves --weight none', 'key set yves --weight abc',
                  'key set yves --weight -1', 'key set yves --weight ""',
                  'key set yves --weight 07', 'key set yves --weight +5',
                  'key set yves --weight 1e2', 'key set yves --weight 99999',
                  'key set yves --rpm 5 --weight 0',
                  'key set yves --weight 2 --weight 3',
                  'key create yara --source chat --weight 0')
    {
        my $r = sd($args);
        my ($first) = split /\n/, $r->{err};
        push @out, "$args: $r->{status} $first";
        push @out, 'changed!' if grep { record_of($_) ne $before{$_} } qw(yves yuri);
    }
    push @out, 'yves: ' . listed('yves') . ' weight ' . weight_of('yves')
        . ', yuri: weight ' . weight_of('yuri') . ', yara: ' . (defined record_of('yara') ? 'exists' : 'none');
    join "\n", @out;
--- client_output
header: name source state created expires rpm tokens_per_day max_concurrent weight
yves 2, yuri 1
the key "yves" now has rpm none, tokens-per-day none, max-concurrent 2, weight 9
key set yves --weight 0: 2 seadragon-store: key set: invalid --weight "0": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight 1001: 2 seadragon-store: key set: invalid --weight "1001": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight none: 2 seadragon-store: key set: invalid --weight "none": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight abc: 2 seadragon-store: key set: invalid --weight "abc": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight -1: 2 seadragon-store: key set: invalid --weight "-1": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight "": 2 seadragon-store: key set: invalid --weight "": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight 07: 2 seadragon-store: key set: invalid --weight "07": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight +5: 2 seadragon-store: key set: invalid --weight "+5": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight 1e2: 2 seadragon-store: key set: invalid --weight "1e2": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight 99999: 2 seadragon-store: key set: invalid --weight "99999": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --rpm 5 --weight 0: 2 seadragon-store: key set: invalid --weight "0": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
key set yves --weight 2 --weight 3: 2 seadragon-store: key set: --weight is given twice
key create yara --source chat --weight 0: 2 seadragon-store: key create: invalid --weight "0": expected the key's share in fair queuing, a whole number from 1 (the default) to 1000
yves: - - 2 weight 9, yuri: weight 1, yara: none



=== TEST 21: records made before weights (version 2, and version 1) read as weight 1, serve, and a change makes them version 3 with everything else kept
--- client
    my $k2 = tool('key create vera --source chat --rpm 4');
    my $k1 = tool('key create vic --source chat');
    my ($version, $flags, $created, $expires, $name, $source, $tokens, $rpm, $conc)
        = unpack 'V V q< q< Z64 Z32 Q< V V', record_of('vera');
    my %hash = map { $_->[0] => $_->[1] } dump_db('key_names');
    load_db('keys', $hash{vera} => pack('V V q< q< a64 a32 Q< V V', 2, 0, $created, 0,
                                        'vera', 'chat', 0, 4, 0),
                    $hash{vic} => pack('V V q< q< a64 a32', 1, 0, $created, 0, 'vic', 'chat'));
    my @out = ('sizes: vera ' . length(record_of('vera')) . ', vic ' . length(record_of('vic')));
    my %w = map { $_->{name} => $_->{weight} } @{ json_decode(admin('keys')->{body})->{keys} };
    push @out, "GET keys: vera $w{vera}, vic $w{vic}; tool: vera " . weight_of('vera') . ', vic ' . weight_of('vic');
    push @out, map { summary(call('/api/chat', $_, 'X-Standin-Tag' => 'v')) } $k2, $k1;
    push @out, tool('key set vera --max-concurrent 3');
    my $p = admin('keys/vic', method => 'PATCH', body => '{"weight":6}');
    push @out, "patch vic: $p->{status} $p->{body}";
    for my $n (qw(vera vic)) {
        my @f = unpack 'V V q< q< Z64 Z32 Q< V V V V', record_of($n);
        push @out, "$n: " . length(record_of($n)) . " bytes, version $f[0], "
            . ($f[2] == $created ? 'created kept' : 'created changed')
            . ", $f[4] $f[5], rpm $f[7], max_concurrent $f[8], weight $f[9]";
    }
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
sizes: vera 136, vic 120
GET keys: vera 1, vic 1; tool: vera 1, vic 1
200 retry=-
200 retry=-
the key "vera" now has rpm 4, tokens-per-day none, max-concurrent 3, weight 1
patch vic: 200 {"name":"vic","limits":{"rpm":null,"tokens_per_day":null,"max_concurrent":null},"weight":6}
vera: 144 bytes, version 3, created kept, vera chat, rpm 4, max_concurrent 3, weight 1
vic: 144 bytes, version 3, created kept, vic chat, rpm 0, max_concurrent 0, weight 6
stand-in got: v,v
