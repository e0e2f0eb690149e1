# Fair shares within a priority (seadragon_zone fair=): among the tenants
# of one priority, the next request comes from the tenant that has been
# served the fewest tokens (the Virtual Token Counter); FIFO within a
# tenant; a tenant that comes back cannot bank credit; priorities stay
# strict.  Every block parks its requests while the gate is held, so the
# order the stand-in saw is the order the zone chose; what the blocks
# compare it with is the order a small model of the counter gives (below),
# or the literal order worked out by hand in the block's title.  TEST 12
# is skipped under valgrind, as t/007's reloads are: there an old worker
# holding a request is not told apart from a live one, and the reload
# waits for it.
use lib 't/lib';
use Test::Seadragon;

gate_setup();

# tenants by X-Tenant; "fair=" is set by each block
$::http_config =~ s/capacity=\$TEST_NGINX_CAPACITY/capacity=1 \$TEST_NGINX_FAIR tenant=\$http_x_tenant/;
$ENV{TEST_NGINX_FAIR} = 'fair=tokens';

# chat($tag, tenant, tokens): one request of that tenant, the answer that
# long; the prompt "hi" is one token
sub ask {
    my ($tag, $tenant, $tokens, @more) = @_;
    return chat($tag, 'X-Tenant' => $tenant, 'X-Standin-Tokens' => $tokens,
                @more);
}

# parks [tag, tenant, tokens]... behind a held gate, releases, waits;
# returns the tags in the order Ollama saw them, the hold left out
sub burst {
    my (@reqs) = @_;
    my $base = queued_count();
    my $hold = hold_gate(sub { ask('hold', 'h', 1, 'X-Standin-Hold' => 1) });
    my @h;
    for my $r (@reqs) {
        push @h, ask(@$r);
        my $n = scalar @h;
        wait_until(sub { queued_count() == $base + 1 + $n }, "$r->[0] to queue");
    }
    standin_release();
    my @res = wait_all($hold, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed: " . said($bad[0]) if @bad;
    my @served = map { $_->{tag} } @{ standin_requests() };
    @served = grep { $_ ne 'hold' } @served;
    return join ",", @served[-@reqs .. -1];
}

# The model of the counter for requests that all wait before the first is
# let in: every tenant starts at the same counter; the next is the tenant
# with the smallest, the older head first on a tie; its counter grows by
# what its answer cost (prompt + completion tokens), or by 1 by request.
sub model_order {
    my ($by_requests, @reqs) = @_;
    my (%c, %q, @order);
    my $id = 0;
    for my $r (@reqs) {
        push @{ $q{ $r->[1] } }, [ $id++, $r->[0], 1 + $r->[2] ];
        $c{ $r->[1] } = 0;
    }
    while (my @t = grep { @{ $q{$_} } } keys %q) {
        my ($t) = sort { $c{$a} <=> $c{$b} or $q{$a}[0][0] <=> $q{$b}[0][0] } @t;
        my $e = shift @{ $q{$t} };
        push @order, $e->[1];
        $c{$t} += $by_requests ? 1 : $e->[2];
    }
    return join ",", @order;
}

# the zone with capacity 2 and fair shares off (for a reload in a block)
our $cap2 = $::http_config =~ s/capacity=1 \$TEST_NGINX_FAIR/capacity=2/r;

# four heavy requests of tenant a, then two light of b and one of c
our @noisy = (['a1', 'a', 10], ['a2', 'a', 10], ['a3', 'a', 10], ['a4', 'a', 10],
             ['b1', 'b', 1], ['b2', 'b', 1], ['c1', 'c', 1]);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: fair shares off (the default): one priority is first come, first served
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_FAIR//;
$c
--- client
    burst(@::noisy);
--- client_output
a1,a2,a3,a4,b1,b2,c1



=== TEST 2: fair=tokens: the light tenants do not wait behind the heavy one (a1 b1 c1 b2, then a)
--- client
    my $got = burst(@::noisy);
    "$got\n" . ($got eq model_order(0, @::noisy) ? "as the model" : "not the model: " . model_order(0, @::noisy));
--- client_output
a1,b1,c1,b2,a2,a3,a4
as the model



=== TEST 3: fair=requests: a round robin by request count, whatever the answers cost
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_FAIR/fair=requests/;
$c
--- client
    my $got = burst(@::noisy);
    "$got\n" . ($got eq model_order(1, @::noisy) ? "as the model" : "not the model");
--- client_output
a1,b1,c1,a2,b2,a3,a4
as the model



=== TEST 4: FIFO within a tenant, and the counter's order for a constructed sequence of 5 tenants
--- timeout: 60
--- client
    srand(15);
    my @reqs;
    for my $i (1 .. 40) {
        my $t = (qw(p q r s t))[int rand 5];
        push @reqs, ["$t$i", $t, (1, 2, 5, 20)[int rand 4]];
    }
    my $got = burst(@reqs);
    my %last;
    my $fifo = 1;
    for my $tag (split /,/, $got) {
        my ($t, $n) = $tag =~ /^([a-z])(\d+)$/;
        $fifo = 0 if defined $last{$t} && $n < $last{$t};
        $last{$t} = $n;
    }
    ($got eq model_order(0, @reqs) ? "as the model" : "not the model:\n$got\n" . model_order(0, @reqs))
        . "\nfifo within tenants: " . ($fifo ? "yes" : "no");
--- client_output
as the model
fifo within tenants: yes



=== TEST 5: a tenant that comes back after a pause is lifted to the others' counter: no banked credit (a4 b1 a5 b2 a6 b3, not b1 b2 b3 first)
--- client
    # a is served alone first (its counter grows by 33), then b arrives
    # for the first time: it starts at a's counter, not at 0
    for my $i (1 .. 3) {
        my $r = wait_request(ask("a$i", 'a', 10));
        die said($r) unless $r->{status} == 200;
    }
    burst(['a4', 'a', 10], ['a5', 'a', 10], ['a6', 'a', 10],
          ['b1', 'b', 10], ['b2', 'b', 10], ['b3', 'b', 10]);
--- client_output
a4,b1,a5,b2,a6,b3



=== TEST 6: priorities stay strict with fair shares: every coding request before the lighter api tenant
--- client
    burst(['api1', 'light', 1], ['coding1', 'heavy', 20], ['coding2', 'heavy', 20],
          ['api2', 'light', 1], ['coding3', 'heavy', 20]);
--- client_output
coding1,coding2,coding3,api1,api2



=== TEST 7: with 2 workers, the order is the zone's, whichever worker took each request
--- workers: 2
--- timeout: 60
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        access_log logs/gate.log gate;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
    }
_EOC_
--- client
    srand(7);
    my @reqs;
    for my $i (1 .. 30) {
        my $t = (qw(p q r))[int rand 3];
        push @reqs, ["$t$i", $t, (1, 3, 9)[int rand 3],
                     port => $ENV{TEST_NGINX_REUSEPORT_PORT}];
    }
    my $got = burst(@reqs);
    my %pids;
    for (split /\n/, access_log_text('gate.log')) {
        my ($tag, $id, $src, $pid) = split / /;
        $pids{$pid}++ if $tag ne 'hold';
    }
    ($got eq model_order(0, @reqs) ? "as the model" : "not the model:\n$got\n" . model_order(0, @reqs))
        . "\nworkers: " . scalar(keys %pids);
--- client_output
as the model
workers: 2



=== TEST 8: per-model slots: llama3 has 1 of the gate's 2, so a second llama3 request waits while an embedding goes past it
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1 \$TEST_NGINX_FAIR/capacity=2/;
$c . <<'_EOC_';
    seadragon_model ollama llama3:70b slots=1;
    seadragon_model ollama nomic-embed-text slots=1;
_EOC_
--- config eval
$::config . '    location /api/admin/ { seadragon_admin ollama auth=nginx; }'
--- client
    my $hold = hold_gate(sub { ask('hold', 'h', 1, 'X-Standin-Hold' => 1) });
    my $l2 = ask('l2', 'h', 1);
    wait_until(sub { queued_count() == 2 }, 'l2 to queue');
    my $e1 = wait_request(start_request('POST /api/embed',
        body => '{"model":"nomic-embed-text","input":"hi"}',
        headers => { 'X-Standin-Tag' => 'e1' }));
    my $waiting = join ",", map { $_->{model} } @{ admin_queue()->{entries} };
    my $seen = served_tags();
    standin_release();
    my @res = wait_all($hold, $l2);
    join "\n", "embed: $e1->{status}", "waiting then: $waiting", "Ollama had: $seen",
        "then: " . served_tags(), "statuses: " . join(",", map { $_->{status} } @res),
        "queue now: " . scalar @{ admin_queue()->{entries} };
--- client_output
embed: 200
waiting then: llama3:70b
Ollama had: hold,e1
then: hold,e1,l2
statuses: 200,200
queue now: 0



=== TEST 9: without its own slots, the second llama3 request takes the gate's second slot at once
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1 \$TEST_NGINX_FAIR/capacity=2/;
$c
--- config eval
$::config . '    location /api/admin/ { seadragon_admin ollama auth=nginx; }'
--- client
    my $hold = hold_gate(sub { ask('hold', 'h', 1, 'X-Standin-Hold' => 1) });
    my $l2 = wait_request(ask('l2', 'h', 1));
    my $seen = served_tags();
    standin_release();
    wait_request($hold);
    "l2: $l2->{status}\nOllama had: $seen";
--- client_output
l2: 200
Ollama had: hold,l2



=== TEST 10: a reload keeps the tenants, their counters and tokens, and the new workers keep the order
--- workers: 2
--- config eval
$::config . '    location /api/admin/ { seadragon_admin ollama auth=nginx; }'
--- client
    # tokens/counter/requests: a is served 11 and 11; b comes when nothing
    # waits and starts where the last one let in started (a at 11), then 2
    for my $r (['a1', 'a', 10], ['a2', 'a', 10], ['b1', 'b', 1]) {
        my $res = wait_request(ask(@$r));
        die said($res) unless $res->{status} == 200;
    }
    my $tenants = sub {
        my $t = json_decode(request('GET /api/admin/tenants')->{body});
        join " ", map { "$_->{tenant}=$_->{tokens}/$_->{counter}/$_->{requests}" }
                  sort { $a->{tenant} cmp $b->{tenant} } @{ $t->{tenants} };
    };
    wait_until(sub { $tenants->() =~ m{addr:b=2/} }, 'b1 to be counted');
    my $before = $tenants->();
    nginx_reload();
    my $after = $tenants->();
    my $got = burst(@::noisy);
    join "\n", $before, ($after eq $before ? "the same after the reload" : "after: $after"),
        ($got eq model_order(0, @::noisy) ? "order as the model" : "order: $got");
--- client_output
addr:a=22/22/2 addr:b=2/13/1
the same after the reload
order as the model



=== TEST 11: per-model slots over 2 workers: 12 chats and 12 embeddings at once, never two of a model at once, never more than the gate's 2
--- workers: 2
--- timeout: 60
--- http_config eval
(my $c = $::http_config) =~ s/capacity=1 \$TEST_NGINX_FAIR/capacity=2 fair=tokens/;
$c . <<'_EOC_';
    seadragon_model ollama llama3:70b slots=1;
    seadragon_model ollama nomic-embed-text slots=1;
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
        location /api/admin/ { seadragon_admin ollama auth=nginx; }
    }
_EOC_
--- client
    my $port = $ENV{TEST_NGINX_REUSEPORT_PORT};
    my @h;
    for my $i (1 .. 12) {
        push @h, ask("l$i", "t$i", 4, port => $port, 'X-Standin-Delay-Ms' => 5);
        push @h, start_request('POST /api/embed', port => $port,
            body => '{"model":"nomic-embed-text","input":"hi"}',
            headers => { 'X-Standin-Tag' => "e$i", 'X-Tenant' => "t$i" });
    }
    my @res = wait_all(@h);
    my @bad = grep { $_->{status} != 200 } @res;
    # a request holds its model from its start to its last byte, which the
    # stand-in notes just before it writes the answer's last bytes
    my %most;
    my @recs = grep { ($_->{tag} // '') =~ /^[le]\d/ } @{ standin_requests() };
    for my $r (@recs) {
        my $at = grep { $_->{model} eq $r->{model} && $_->{start} <= $r->{start}
                        && defined $_->{last_byte} && $_->{last_byte} > $r->{start} } @recs;
        $most{ $r->{model} } = $at if $at > ($most{ $r->{model} } // 0);
    }
    my $m = json_decode(request("GET /api/admin/models", port => $port)->{body});
    my $running = join " ", map { "$_->{model}:$_->{running}/$_->{slots}" }
                            sort { $a->{model} cmp $b->{model} }
                            grep { $_->{slots} } @{ $m->{models} };
    join "\n", "failed: " . scalar(@bad), "served: " . scalar(@recs),
        map({ "most at once of $_: $most{$_}" } sort keys %most),
        "peak at most 2: " . (standin_stats()->{peak} <= 2 ? "yes" : "no"),
        "running now: $running";
--- client_output
failed: 0
served: 24
most at once of llama3:70b: 1
most at once of nomic-embed-text: 1
peak at most 2: yes
running now: llama3:70b:0/1 nomic-embed-text:latest:0/1



=== TEST 12: a reload that gives a model its own slot counts the request already running: a second one waits, though the gate has room
--- workers: 2
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- http_config eval
$::cap2
--- config eval
$::config . '    location /api/admin/ { seadragon_admin ollama auth=nginx; }'
--- client
    my $hold = hold_gate(sub { ask('hold', 'h', 1, 'X-Standin-Hold' => 1) });
    nginx_reload(http_config => $::cap2 . "    seadragon_model ollama llama3:70b slots=1;\n");
    my $m = json_decode(request('GET /api/admin/models')->{body});
    my ($l) = grep { $_->{model} eq 'llama3:70b' } @{ $m->{models} };
    my $l2 = ask('l2', 'h', 1);
    wait_until(sub { admin_queue()->{queue_length} == 1 }, 'l2 to wait');
    my $seen = served_tags();
    standin_release();
    my @res = wait_all($hold, $l2);
    my $conf = Test::Seadragon::read_file(servroot() . '/conf/nginx.conf');
    join "\n", "capacity 2: " . ($conf =~ /capacity=2/ ? "yes" : "no"),
        "llama3 after the reload: $l->{running}/$l->{slots}", "Ollama had: $seen",
        "then: " . served_tags(), "statuses: " . join(",", map { $_->{status} } @res);
--- client_output
capacity 2: yes
llama3 after the reload: 1/1
Ollama had: hold
then: hold,l2
statuses: 200,200
