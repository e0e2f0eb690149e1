# Attacks on the scheduler (issue 15): tenant= fed by a client header
# (16 MB, thousands of distinct values in a small zone, hostile bytes),
# an engine's absurd token counts, a client that leaves its stream, a
# 16 MB body, a worker killed with requests of a slots=1 model parked and
# running, a reload that changes fair= under parked requests, model names
# that differ by ":latest", 1,000 distinct models, /api/ps that is huge,
# hung or not JSON, per-model slots under 2 workers.  After each attack
# the state is read back: the queue, the tenants, the models, the
# counters, what Ollama got, the workers' pids, the error log.  TEST 8's
# reloads with requests parked are skipped under valgrind, as t/007's are.
use lib 't/lib';
use Test::Seadragon;
use Time::HiRes ();

plan(skip_all => "build/seadragon-store is not built: run make")
    unless -x store_tool_path();
our $dir = store_init();
sub tool { store_tool(@_) }
our $ops = tool('key create ops --source admin');
our $alice = tool('key create alice --source chat');
our $bob = tool('key create bob --source chat');
our %cross_site = (Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site',
                   'Sec-Fetch-Mode' => 'no-cors', 'Sec-Fetch-Dest' => 'empty');

sub weight_of {
    my ($name) = @_;
    my ($line) = grep { /^\Q$name\E\t/ } split /\n/, tool('key list');
    my @f = split /\t/, $line // '';
    return $f[8] // 'none';
}

workers(2);
master_on();
log_level('info');
standin_options('--extra-model phi3');

our $http_config = <<'_EOC_';
    seadragon_zone ollama:$TEST_NGINX_ZONE capacity=1 fair=tokens tenant=$http_x_tenant loaded=1 $TEST_NGINX_EXTRA;
    seadragon_model ollama phi3 slots=1;
    seadragon_source api priority=3;
    large_client_header_buffers 4 20m;

    # reuseport spreads connections over the workers
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        large_client_header_buffers 4 20m;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
        proxy_set_header X-Tenant "";
            proxy_buffering off;
            add_header X-Pid $pid always;
        }
    }

    # an engine that answers any model with absurd figures
    server {
        listen 127.0.0.1:$TEST_NGINX_ANY_PORT;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ENGINE_PORT;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_ENGINE_PORT;
        location / {
            default_type application/json;
            return 200 '{"model":"m","done":true,"prompt_eval_count":$http_x_prompt,"eval_count":$http_x_eval,"eval_duration":1000000}';
        }
    }
_EOC_

our $config = <<'_EOC_';
    location /admin/ { seadragon_admin ollama auth=nginx; }
    location = /health-big  { seadragon_health ollama /_sd/tags ps=/_sd/big; }
    location = /health-many { seadragon_health ollama /_sd/tags ps=/_sd/many; }
    location = /health-hung { seadragon_health ollama /_sd/tags ps=/_sd/hung; }
    location = /health-text { seadragon_health ollama /_sd/tags ps=/_sd/text; }
    location = /health-ps   { seadragon_health ollama /_sd/tags ps=/_sd/ps; }
    location = /_sd/tags {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/tags;
    }
    location = /_sd/ps {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/ps;
    }
    location = /_sd/big {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/big.json;
    }
    location = /_sd/many {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/many.json;
        subrequest_output_buffer_size 1m;
    }
    location = /_sd/hung {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_HUNG_PORT/api/ps;
        proxy_read_timeout 1s;
    }
    location = /_sd/text {
        internal;
        return 200 'hello, not JSON';
    }
    location = /big.json { default_type application/json; }
    location = /many.json { default_type application/json; }
    location = /metrics { seadragon_metrics ollama; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_set_header X-Tenant "";
        proxy_buffering off;
        add_header X-Pid $pid always;
    }
_EOC_

$ENV{TEST_NGINX_ZONE} = '1m';
$ENV{TEST_NGINX_EXTRA} = '';

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

sub body_for {
    my ($model) = @_;
    return qq({"model":"$model","messages":[{"role":"user","content":"hi"}],"stream":false});
}

# a chat of tenant $t (started), for model $m
sub ask {
    my ($tag, $t, %o) = @_;
    my $m = delete $o{model} // 'llama3:70b';
    my $port = delete $o{port};
    return start_request('POST /api/chat', body => delete $o{body} // body_for($m),
        ($port ? (port => $port) : ()), timeout => 30,
        headers => { 'X-Standin-Tag' => $tag, 'X-Tenant' => $t,
                     'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0, %o });
}

sub admin { json_decode(request("GET /admin/$_[0]")->{body}) }

# the tenants: "name:waiting/running/requests" sorted, and their totals
sub tenants_busy {
    my $n = 0;
    $n += $_->{waiting} + $_->{running} for @{ admin('tenants')->{tenants} };
    return $n;
}

sub queue_len { scalar @{ admin("queue")->{entries} } }

sub gate_running {
    my $q = admin('queue');
    return scalar @{ $q->{running} // [] };
}

sub queue_len_key {
    return scalar @{ json_decode(request('GET /admin/queue',
        headers => { Authorization => "Bearer $ops" })->{body})->{entries} };
}

sub pids { join ",", sort { $a <=> $b } nginx_worker_pids() }

sub no_alert {
    my $log = error_log_text();
    my @bad = grep { /\[(alert|emerg|crit)\]|exited on signal|segfault/ } split /\n/, $log;
    return @bad ? "alerts: @bad[0 .. ($#bad < 2 ? $#bad : 2)]" : "no alerts";
}

sub promtool_ok {
    my $m = request('GET /metrics');
    my $file = servroot() . "/metrics.txt";
    Test::Seadragon::write_file($file, $m->{body});
    my $out = `promtool check metrics < '$file' 2>&1`;
    return $? ? "promtool: $out" : "promtool: ok";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a 16 MB tenant header: served, the tenant's name cut to its bound and ended by a hash; the same value is the same tenant, one that differs only at its end another
--- client
    my $pids = pids();
    my $v1 = 'a' x (16 << 20);
    my $v2 = ('a' x ((16 << 20) - 1)) . 'b';
    my @r = map { wait_request($_) } ask('t1', $v1), ;
    push @r, wait_request(ask('t2', $v1));
    push @r, wait_request(ask('t3', $v2));
    my @st = map { $_->{status} } @r;
    my $t = admin('tenants');
    my @names = sort map { "$_->{tenant}" } @{ $t->{tenants} };
    my $maxlen = 0;
    $maxlen = length($_) > $maxlen ? length($_) : $maxlen for @names;
    my @req = sort map { $_->{requests} } @{ $t->{tenants} };
    join "\n", "status @st", "tenants " . scalar(@names) . " requests @req",
        "names cut: " . (($maxlen <= 68 && !(grep { !/^addr:a+~[0-9a-f]{8}$/ } @names)) ? "yes" : "no: $maxlen @names"),
        "ollama got " . scalar(@{ standin_requests() }),
        "busy " . tenants_busy(),
        "workers " . (pids() eq $pids ? "same" : "changed"), no_alert();
--- client_output
status 200 200 200
tenants 2 requests 1 2
names cut: yes
ollama got 3
busy 0
workers same
no alerts
--- timeout: 60



=== TEST 2: 10,000 distinct tenants one after the other, then 120 parked at once, in a 64k zone over 2 workers: memory bounded, every refusal a JSON 503, nothing lost, the queue works after
--- timeout: 240
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_ZONE/64k/;
$c
--- client
    my $pids = pids();
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    my (%st, $bad);
    for my $i (1 .. 10000) {
        my $r = request('POST /api/chat', port => $spread, body => body_for('llama3:70b'),
            headers => { 'X-Standin-Tag' => "s$i", 'X-Tenant' => "tenant-$i",
                         'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0 });
        $st{ $r->{status} }++;
        $bad++ if $r->{status} != 200
                  && !($r->{status} == 503 && eval { json_decode($r->{body})->{error} });
    }
    my $known = admin('tenants')->{tenants_known};
    my $served1 = scalar @{ standin_requests() };
    my $hold = hold_gate(sub { ask('hold', 'h', 'X-Standin-Hold' => 1) });
    my @h = map { ask("p$_", "parked-$_", port => $spread) } 1 .. 120;
    wait_until(sub { queue_len() + 0 >= 1 }, 'some to park', 20);
    Time::HiRes::sleep(1);
    standin_release();
    my @r = wait_all($hold, @h);
    my (%pst, $pbad);
    for my $r (@r) {
        $pst{ $r->{status} }++;
        $pbad++ if $r->{status} != 200
                   && !($r->{status} == 503 && eval { json_decode($r->{body})->{error} });
    }
    my $served = scalar @{ standin_requests() };
    my $after = wait_request(ask('after', 'after'));
    join "\n", "sequential: " . ($st{200} // 0) . " ok, " . ($bad // 0) . " bad",
        "tenants known bounded: " . ($known <= 1100 ? "yes" : "no: $known"),
        "ollama got every 200: " . ($served1 == ($st{200} // 0) ? "yes" : "no"),
        "parked: " . ($pst{503} ? "some refused" : "none refused") . ", " . ($pbad // 0) . " bad, 200s served: "
            . ($served - $served1 == ($pst{200} // 0) ? "yes" : "no $served $served1 $pst{200}"),
        "after: $after->{status}", "busy " . tenants_busy(), "queue " . queue_len(),
        "workers " . (pids() eq $pids ? "same" : "changed"), no_alert();
--- client_output
sequential: 10000 ok, 0 bad
tenants known bounded: yes
ollama got every 200: yes
parked: some refused, 0 bad, 200s served: yes
after: 200
busy 0
queue 0
workers same
no alerts



=== TEST 3: hostile tenant names (quotes, backslashes, control bytes, invalid UTF-8, UTF-8 cut by the bound): GET tenants is valid JSON, the metrics pass promtool
--- client
    my @names = ('q"uote', 'back\\slash', "ctl\x01\x7f\x1b", "\xff\xfe\xc0", 'x' . ("\xc3\xa9" x 40),
                 '</script><b>', 'a}b{c', "tab\there");
    my @st;
    for my $i (0 .. $#names) {
        push @st, wait_request(ask("n$i", $names[$i]))->{status};
    }
    my $raw = request('GET /admin/tenants')->{body};
    my $t = eval { JSON::PP->new->utf8->decode($raw) };
    my $n = $t ? scalar @{ $t->{tenants} } : "invalid JSON: $@";
    join "\n", "status @st", "tenants $n", promtool_ok(), "busy " . tenants_busy(), no_alert();
--- client_output
status 200 200 200 200 200 200 200 200
tenants 8
promtool: ok
busy 0
no alerts



=== TEST 4: an engine's absurd token counts (2^64-1, beyond, negative, 1e30): counts saturate, the tenant's counter does not wrap: parked behind it, a meek tenant goes first
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my @st;
    for my $p (['18446744073709551615', '18446744073709551615'],
               ['99999999999999999999999', '5'], ['-5', '-7'], ['1e30', '3']) {
        my $r = request('POST /api/chat', port => $any, body => body_for('llama3:70b'),
            headers => { 'X-Tenant' => 'greedy', 'X-Prompt' => $p->[0], 'X-Eval' => $p->[1] });
        push @st, $r->{status};
    }
    my ($g) = grep { $_->{tenant} eq 'addr:greedy' } @{ admin('tenants')->{tenants} };
    my $hold = hold_gate(sub { ask('hold', 'h', 'X-Standin-Hold' => 1) });
    my @h;
    for my $x (['meek1', 'meek'], ['greedy1', 'greedy'], ['meek2', 'meek']) {
        push @h, ask(@$x);
        my $n = @h;
        wait_until(sub { queue_len() == $n }, "$x->[0] to park");
    }
    standin_release();
    my @r = wait_all($hold, @h);
    my @served = grep { $_ ne 'hold' } map { $_->{tag} } @{ standin_requests() };
    join "\n", "status @st", "tokens " . ($g->{tokens} >= 4294967295 && $g->{tokens} <= 18446744073709551615 ? "saturated" : $g->{tokens}),
        "counter " . ($g->{counter} >= 4294967295 ? "huge" : $g->{counter}),
        "order @served", "busy " . tenants_busy(), promtool_ok(), no_alert();
--- client_output
status 200 200 200 200
tokens saturated
counter huge
order meek1 meek2 greedy1
busy 0
promtool: ok
no alerts



=== TEST 5: a client that leaves its stream midway: its tenant is not left running, its counter stays sane, the gate is free
--- client
    my $h = start_request('POST /api/chat', timeout => 30,
        body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}]}',
        headers => { 'X-Tenant' => 'leaver', 'X-Standin-Tag' => 'leave',
                     'X-Standin-Tokens' => 2000, 'X-Standin-Delay-Ms' => 5 });
    wait_until(sub { (standin_requests()->[0] // {})->{first_byte} }, 'the stream to start');
    Time::HiRes::sleep(0.2);
    abort_request($h);
    wait_until(sub { tenants_busy() == 0 }, 'the tenant to be idle');
    my ($t) = grep { $_->{tenant} eq 'addr:leaver' } @{ admin('tenants')->{tenants} };
    my $next = wait_request(ask('next', 'other'));
    join "\n", "running " . gate_running(), "leaver requests $t->{requests}",
        "counter sane: " . ($t->{counter} >= 1 && $t->{counter} < 2100 ? "yes" : "no $t->{counter}"),
        "next $next->{status}", "busy " . tenants_busy(), no_alert();
--- client_output
running 0
leaver requests 1
counter sane: yes
next 200
busy 0
no alerts



=== TEST 6: a 16 MB body: charged its estimate (a token per 4 bytes) while it runs, then exactly what Ollama counted
--- timeout: 60
--- client
    my $text = 'word ' x (16 << 18);
    my $h = start_request('POST /api/chat', timeout => 60,
        body => qq({"model":"llama3:70b","messages":[{"role":"user","content":"$text"}],"stream":false}),
        headers => { 'X-Tenant' => 'big', 'X-Standin-Tag' => 'big', 'X-Standin-Hold' => 1,
                     'X-Standin-Tokens' => 3, 'X-Standin-Delay-Ms' => 0 });
    wait_until(sub { standin_stats()->{active} == 1 }, 'the big one to run', 30);
    my ($t) = grep { $_->{tenant} eq 'addr:big' } @{ admin('tenants')->{tenants} };
    my $during = $t->{counter};
    standin_release();
    my $r = wait_request($h);
    ($t) = grep { $_->{tenant} eq 'addr:big' } @{ admin('tenants')->{tenants} };
    join "\n", "status $r->{status}",
        "estimate " . ($during >= (16 << 20) / 4 ? "charged" : "not: $during"),
        "after: counter = tokens: " . ($t->{counter} == $t->{tokens} ? "yes" : "no $t->{counter} $t->{tokens}"),
        "busy " . tenants_busy(), no_alert();
--- client_output
status 200
estimate charged
after: counter = tokens: yes
busy 0
no alerts



=== TEST 7: SIGKILL of the worker running the only request a slots=1 model may have, with requests of its tenants parked in both workers: the tenants' counts and the model's running count come back to 0, the model takes a new request
--- timeout: 60
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1/capacity=2/;
$c
--- client
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    my @before = nginx_worker_pids();
    my $e1 = ask('e1', 'emb', model => 'phi3', port => $spread, 'X-Standin-Hold' => 1);
    wait_until(sub { standin_stats()->{active} == 1 }, 'e1 to run');
    my $l1 = ask('l1', 'chat', port => $spread, 'X-Standin-Hold' => 1);
    wait_until(sub { standin_stats()->{active} == 2 }, 'l1 to run');
    my @p = map { ask("e$_", 'emb', model => 'phi3', port => $spread) } 2 .. 7;
    wait_until(sub { queue_len() == 6 }, 'six to park');
    my ($run) = grep { $_->{model} =~ /^phi3/ } @{ admin('queue')->{running} };
    my $victim = $run->{worker};
    my ($m) = grep { $_->{model} eq 'phi3:latest' } @{ admin('models')->{models} };
    my $running_before = $m->{running};
    kill 'KILL', $victim or die "kill $victim: $!";
    # the others are served, one at a time, as each is released
    for (1 .. 20) {
        standin_release();
        last if tenants_busy() == 0;
        Time::HiRes::sleep(0.3);
    }
    wait_until(sub { tenants_busy() == 0 && queue_len() == 0 }, 'everything done', 20);
    my @r = wait_all($e1, $l1, @p);
    ($m) = grep { $_->{model} eq 'phi3:latest' } @{ admin('models')->{models} };
    my $after = ask('e9', 'emb', model => 'phi3');
    my $ra = wait_request($after);
    my @now = nginx_worker_pids();
    my %was = map { $_ => 1 } @before;
    my @ok = grep { ($_->{status} // 0) == 200 } @r;
    my @gone = grep { !defined $_->{status} || $_->{status} == 0 } @r;
    join "\n", "running before $running_before, after $m->{running}",
        "served or cut: " . (@ok + @gone == @r ? "all" : "no"),
        "ollama got each served: " . (scalar(grep { $_->{status} && $_->{status} == 200 } @{ standin_requests() }) >= @ok ? "yes" : "no"),
        "after $ra->{status}", "busy " . tenants_busy(), "queue " . queue_len(),
        "running " . gate_running(),
        "survivor kept: " . (scalar(grep { $was{$_} } @now) == 1 ? "yes" : "no"),
        "workers " . scalar(@now);
--- client_output
running before 1, after 0
served or cut: all
ollama got each served: yes
after 200
busy 0
queue 0
running 0
survivor kept: yes
workers 2



=== TEST 8: reloads that change fair= (tokens, off, requests), a model's slots, remove it, change loaded= and the capacity (2 to 1) while requests of 3 tenants are parked in 2 workers: nothing lost, FIFO within each tenant, no crash
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- timeout: 90
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1/capacity=2/;
$c
--- client
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    (my $base = $::http_config) =~ s/capacity=1/capacity=2/;
    my @holds = map { ask("hold", "h$_", 'X-Standin-Hold' => 1) } 1 .. 2;
    wait_until(sub { standin_stats()->{active} == 2 }, 'the holds to run');
    my @h;
    my $n = 0;
    my $park = sub {
        for (1 .. 4) {
            $n++;
            my $t = (qw(a b c))[$n % 3];
            push @h, ask("$t$n", $t, port => $spread,
                         ($n % 4 ? () : (model => 'phi3')));
            my $want = @h;
            wait_until(sub { queue_len() == $want }, "$want to park", 20);
        }
    };
    $park->();
    (my $c = $base) =~ s/fair=tokens/fair=off/;
    $c =~ s/slots=1/slots=2/;
    nginx_reload(http_config => $c);
    $park->();
    ($c = $base) =~ s/fair=tokens/fair=requests/;
    $c =~ s/loaded=1/loaded=4/;
    $c =~ s/\n\s*seadragon_model[^\n]*//;
    nginx_reload(http_config => $c);
    $park->();
    # back to capacity 1: from here on one at a time, so the order the
    # stand-in sees is the order of the gate
    nginx_reload(http_config => $::http_config);
    $park->();
    my $q = queue_len();
    standin_release();
    my @r = wait_all(@holds, @h);
    my @bad = grep { $_->{status} != 200 } @r;
    my @served = grep { $_ ne 'hold' } map { $_->{tag} } @{ standin_requests() };
    # requests parked while fair=off (5 to 8) have no tenant: each is
    # its own, at counter 0, so they pass the older ones of their
    # tenant parked with fair shares on (b7 before b4): FIFO holds
    # within each tenant among those parked with fair shares, and among
    # those parked without
    my (%last, $fifo);
    $fifo = 1;
    for my $tag (@served) {
        my ($t, $i) = $tag =~ /^([a-z])(\d+)$/;
        $t = 'plain' if $i >= 5 && $i <= 8;
        $fifo = 0 if defined $last{$t} && $i < $last{$t};
        $last{$t} = $i;
    }
    join "\n", "parked $q", "failed " . scalar(@bad), "served " . scalar(@served),
        "fifo within tenants: " . ($fifo ? "yes" : "no: @served"),
        "busy " . tenants_busy(), "queue " . queue_len(), no_alert();
--- client_output
parked 16
failed 0
served 16
fifo within tenants: yes
busy 0
queue 0
no alerts



=== TEST 9: model names: "phi3" and "phi3:latest" are one model; 1,000 distinct models keep the swaps table bounded (the last row "other") and one resident; names of 250 bytes cut inside UTF-8; GET models valid JSON, metrics pass promtool
--- timeout: 90
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my $ask = sub {
        my $r = request('POST /api/chat', port => $any, body => body_for($_[0]),
                        headers => { 'X-Prompt' => 1, 'X-Eval' => 1, 'X-Tenant' => 'm' });
        return $r->{status};
    };
    my %st;
    $st{ $ask->('phi3') }++;
    $st{ $ask->('phi3:latest') }++;
    my ($p) = grep { $_->{model} =~ /^phi3/ } @{ admin('models')->{models} };
    my $phi = "$p->{model} $p->{dispatched}";
    $st{ $ask->("model-$_") }++ for 1 .. 1000;
    $st{ $ask->(('x' x 90) . ("\xc3\xa9" x 80)) }++;
    $st{ $ask->(('y' x 99) . ("\xe2\x82\xac" x 50)) }++;
    my $raw = request('GET /admin/models')->{body};
    my $m = eval { JSON::PP->new->utf8->decode($raw) };
    my $rows = $m ? scalar @{ $m->{models} } : "invalid JSON $@";
    my $other = $m ? (grep { $_->{model} eq 'other' } @{ $m->{models} })[0] : undef;
    my $sum = 0;
    $sum += $_->{dispatched} for @{ $m->{models} };
    join "\n", "status " . join(",", map { "$_:$st{$_}" } sort keys %st), "phi3: $phi",
        "rows bounded: " . ($rows <= 33 + 16 ? "yes" : "no $rows"),
        "other: " . ($other ? "yes" : "no"), "dispatched total $sum",
        "resident " . scalar(@{ $m->{resident} }), promtool_ok(), no_alert();
--- client_output
status 200:1004
phi3: phi3:latest 2
rows bounded: yes
other: yes
dispatched total 1004
resident 1
promtool: ok
no alerts



=== TEST 10: /api/ps answering 1,000 models with odd names, hung, not JSON: each health check answers, the views stay bounded and are unchanged by the bad ones (100 MB: TEST 13)
--- timeout: 60
--- client
    my $pids = pids();
    my $many = '{"models":[' . join(",", map { qq({"name":"m$_","size":1}) } 1 .. 1000)
             . ',{"name":"' . ('z' x 300) . '"},{"name":12},{"name":null},{"name":["a"]},{"name":{"x":"y"}}]}';
    Test::Seadragon::write_file(html_dir() . "/many.json", $many);
    my $hung = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1',
                                     LocalPort => $ENV{TEST_NGINX_HUNG_PORT}, ReuseAddr => 1)
        or die "listen: $!";
    my $r0 = wait_request(ask('warm', 'w'));
    my $view = sub { my $m = admin('models'); json_encode([$m->{resident}, $m->{servers}]) };
    my $before = $view->();
    my @out;
    for my $h (qw(hung text)) {
        my $r = request("GET /health-$h", timeout => 20);
        my $ok = eval { json_decode($r->{body}); 1 } ? "json" : "not json";
        push @out, "$h $r->{status} $ok " . ($view->() eq $before ? "unchanged" : "changed: " . $view->());
    }
    my $r = request('GET /health-many', timeout => 20);
    my $m = admin('models');
    my ($srv) = grep { @{ $_->{models} } } @{ $m->{servers} };
    push @out, "many $r->{status} resident " . scalar(@{ $m->{resident} })
               . " server models bounded: " . (($srv ? scalar @{ $srv->{models} } : 0) <= 8 ? "yes" : "no");
    my $after = wait_request(ask('after', 'w'));
    join "\n", @out, "after $after->{status}", "busy " . tenants_busy(),
        "workers " . (pids() eq $pids ? "same" : "changed"), no_alert();
--- client_output
hung 200 json unchanged
text 200 json unchanged
many 200 resident 1 server models bounded: yes
after 200
busy 0
workers same
no alerts



=== TEST 11: per-model slots: phi3 at its one slot with more phi3 waiting at a better priority does not block a chat of another model (no head-of-line blocking)
--- timeout: 30
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1/capacity=2/;
$c =~ s/seadragon_source api/seadragon_source urgent priority=1 if=\$http_x_urgent;\n    seadragon_source api/;
$c
--- client
    my $p1 = ask('p1', 'a', model => 'phi3', 'X-Standin-Hold' => 1, 'X-Urgent' => 1);
    wait_until(sub { standin_stats()->{active} == 1 }, 'p1 to run');
    my $p2 = ask('p2', 'a', model => 'phi3', 'X-Urgent' => 1);
    wait_until(sub { queue_len() == 1 }, 'p2 to park');
    my $l = wait_request(ask('l1', 'b'));
    my $q = admin('queue');
    my @waiting = map { $_->{model} } @{ $q->{entries} };
    standin_release();
    my @r = wait_all($p1, $p2);
    join "\n", "l1 $l->{status} while p1 runs", "waiting @waiting",
        "then @{[ map { $_->{status} } @r ]}", "order " . served_tags(),
        "busy " . tenants_busy(), no_alert();
--- client_output
l1 200 while p1 runs
waiting phi3:latest
then 200 200
order p1,l1,p2
busy 0
no alerts



=== TEST 12: 60 requests at once over 2 workers, phi3 (slots=1), llama3:70b and the embedding model, capacity 3: never more than one phi3 or three in all at the stand-in, every one served
--- timeout: 90
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1/capacity=3/;
$c
--- client
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    my @h;
    for my $i (1 .. 60) {
        my $m = (qw(phi3 llama3:70b phi3))[$i % 3];
        push @h, ask("r$i", "t" . ($i % 7), model => $m, port => $spread,
                     'X-Standin-Tokens' => 5, 'X-Standin-Delay-Ms' => 5);
    }
    my @r = wait_all(@h);
    my @bad = grep { $_->{status} != 200 } @r;
    my (@ev, %now, %peak, $all, $peak_all);
    for my $rec (@{ standin_requests() }) {
        push @ev, [$rec->{start}, 1, $rec->{model}], [$rec->{last_byte} // $rec->{end}, -1, $rec->{model}];
    }
    for my $e (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @ev) {
        $now{ $e->[2] } += $e->[1];
        $all += $e->[1];
        $peak{ $e->[2] } = $now{ $e->[2] } if $now{ $e->[2] } > ($peak{ $e->[2] } // 0);
        $peak_all = $all if $all > ($peak_all // 0);
    }
    my ($m) = grep { $_->{model} eq 'phi3:latest' } @{ admin('models')->{models} };
    join "\n", "failed " . scalar(@bad), "served " . scalar(@{ standin_requests() }),
        "phi3 at once at most " . ($peak{'phi3:latest'} // $peak{phi3}), "all at once at most " . ($peak_all <= 3 ? "3" : $peak_all),
        "phi3 running $m->{running}", "busy " . tenants_busy(), "queue " . queue_len(), no_alert();
--- client_output
failed 0
served 60
phi3 at once at most 1
all at once at most 3
phi3 running 0
busy 0
queue 0
no alerts



=== TEST 13: /api/ps answering 100 MB, more than the location's subrequest_output_buffer_size: what does not fit is dropped, the health check answers, the views stay as they were
--- timeout: 60
--- client
    my $pids = pids();
    my $big = '{"models":[' . join(",", map { qq({"name":"m$_"}) } 1 .. 20) . ']}' . (' ' x (100 << 20));
    Test::Seadragon::write_file(html_dir() . "/big.json", $big);
    my $r0 = wait_request(ask('warm', 'w'));
    my $view = sub { my $m = admin('models'); json_encode([$m->{resident}, $m->{servers}]) };
    my $before = $view->();
    my $r = request("GET /health-big", timeout => 30);
    my $ok = eval { json_decode($r->{body}); 1 } ? "json" : "not json";
    my $after = wait_request(ask('after', 'w'));
    join "\n", "big " . ($r->{status} // 'none') . " $ok "
        . ($view->() eq $before ? "unchanged" : "changed: " . $view->()),
        "after $after->{status}", "workers " . (pids() eq $pids ? "same" : "changed"),
        (error_log_text() =~ /larger than subrequest_output_buffer_size/ ? "logged" : "not logged"),
        no_alert();
--- client_output
big 200 json unchanged
after 200
workers same
logged
no alerts



=== TEST 14: a key's weight changed while its requests are parked: refused without a credential, with a chat key, cross-site (nothing changes: the key, the tenant, the order to come); with the admin key it applies to the key's next request and to the tenant's place at once (a1, then every b, then a)
--- timeout: 60
--- http_config eval
(my $c = $::http_config) =~ s/seadragon_zone/seadragon_store \$TEST_NGINX_STORE;\n    seadragon_zone/;
$c =~ s/seadragon_source api/seadragon_source chat priority=1 key;\n    seadragon_source api/;
$c
--- config eval
(my $c = $::config) =~ s/seadragon_admin ollama auth=nginx;/seadragon_admin ollama;/;
$c
--- client
    my $auth = "Bearer $ops";
    my $tenants = sub {
        my $t = json_decode(request('GET /admin/tenants', headers => { Authorization => $auth })->{body});
        return join " ", map { "$_->{tenant}:$_->{weight}/$_->{waiting}" }
                         sort { $a->{tenant} cmp $b->{tenant} } @{ $t->{tenants} };
    };
    my $hold = hold_gate(sub { ask('hold', 'h', 'X-Standin-Hold' => 1) });
    my @h;
    for my $x (['a1', $alice], ['a2', $alice], ['a3', $alice], ['b1', $bob], ['b2', $bob], ['b3', $bob]) {
        push @h, ask($x->[0], 'ignored', Authorization => "Bearer $x->[1]", 'X-Standin-Tokens' => 10);
        my $n = @h;
        wait_until(sub { queue_len_key() == $n }, "$x->[0] to park");
    }
    my $before = $tenants->();
    my @out;
    for my $try (['none', {}], ['chat key', { Authorization => "Bearer $alice" }],
                 ['cross-site', { %cross_site }],
                 ['cross-site with the key', { %cross_site, Authorization => $auth }]) {
        my $r = request('PATCH /admin/keys/bob', body => '{"weight":1000}', headers => $try->[1]);
        my $json = eval { json_decode($r->{body})->{error} } ? "json" : "not json";
        push @out, "$try->[0]: $r->{status} $json, key " . weight_of('bob')
                   . ", tenants " . ($tenants->() eq $before ? "unchanged" : "changed");
    }
    for my $read (qw(tenants models history)) {
        my $none = request("GET /admin/$read")->{status};
        my $chat = request("GET /admin/$read", headers => { Authorization => "Bearer $alice" })->{status};
        push @out, "GET $read: $none, chat key $chat";
    }
    my $p = request('PATCH /admin/keys/bob', body => '{"weight":1000}', headers => { Authorization => $auth });
    push @out, "admin: $p->{status}, key " . weight_of('bob');
    push @h, ask('b4', 'ignored', Authorization => "Bearer $bob", 'X-Standin-Tokens' => 10);
    wait_until(sub { queue_len_key() == 7 }, "b4 to park");
    push @out, "tenants $before -> " . $tenants->();
    standin_release();
    my @r = wait_all($hold, @h);
    push @out, "status " . join(",", map { $_->{status} } @r);
    push @out, "order " . join(",", grep { $_ ne 'hold' } map { $_->{tag} } @{ standin_requests() });
    join "\n", @out, no_alert();
--- client_output
none: 401 json, key 1, tenants unchanged
chat key: 403 json, key 1, tenants unchanged
cross-site: 403 json, key 1, tenants unchanged
cross-site with the key: 403 json, key 1, tenants unchanged
GET tenants: 401, chat key 403
GET models: 401, chat key 403
GET history: 401, chat key 403
admin: 200, key 1000
tenants addr:h:1/0 key:alice:1/3 key:bob:1/3 -> addr:h:1/0 key:alice:1/3 key:bob:1000/4
status 200,200,200,200,200,200,200,200
order a1,b1,b2,b3,b4,a2,a3
no alerts



=== TEST 15: affinity with "phi3" against a resident "phi3:latest": the waiting "phi3" is resident (GET queue) and goes before an older request for a model that is not; names differing only by ":latest" are one model
--- http_config eval
(my $c = $::http_config) =~ s/loaded=1/loaded=1 affinity=30s/;
$c
--- client
    my $hold = hold_gate(sub { ask('hold', 'h', model => 'phi3:latest', 'X-Standin-Hold' => 1) });
    my $l = ask('llama', 'a');
    wait_until(sub { queue_len() == 1 }, 'llama to park');
    my $p = ask('phi', 'b', model => 'phi3');
    wait_until(sub { queue_len() == 2 }, 'phi to park');
    my $q = admin('queue');
    my @res = map { "$_->{model}=" . ($_->{resident} ? "resident" : "not") } @{ $q->{entries} };
    standin_release();
    my @r = wait_all($hold, $l, $p);
    join "\n", "waiting @res", "status " . join(",", map { $_->{status} } @r),
        "order " . served_tags(), "busy " . tenants_busy(), no_alert();
--- client_output
waiting phi3:latest=resident llama3:70b=not
status 200,200,200
order hold,phi,llama
busy 0
no alerts
